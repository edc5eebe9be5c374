"""Job tools: propose an AI job (prompt, rows, preview on 3 rows, estimate), read a job's
progress, propose cancelling one. Starting and cancelling run the jobs services on Apply.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied

from chat.tools.reads import SHEET_ID
from chat.tools.registry import Outcome, Proposal, ToolContext, ToolError, applier, tool
from jobs import services as job_services
from jobs.models import Job
from sheets.models import Sheet

SELECTIONS = ("all", "empty", "filter")


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _spec(sheet: Sheet, arguments: dict[str, Any]) -> job_services.JobSpec:
    from sheets.models import Column

    target = Column.objects.filter(sheet=sheet, title__iexact=arguments["target_column"]).first()
    return job_services.JobSpec(
        sheet_id=sheet.pk,
        template=arguments["prompt"],
        target_column_id=target.pk if target else None,
        new_column_title="" if target else arguments["target_column"],
        selection=arguments["rows"],
        filter_text=arguments.get("filter") or "",
        name=(arguments.get("name") or "")[:200],
    )


@tool(
    name="start_ai_job",
    description=(
        "Propose an AI job that fills a column row by row from a prompt referencing other "
        "columns as {{Column Title}}. The user sees a preview on 3 rows and the estimated cost "
        "and starts it with Apply. A target column that does not exist is created."
    ),
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "prompt": {"type": "string", "description": "e.g. Summarise {{Description}}."},
            "target_column": {"type": "string", "description": "The column to fill."},
            "rows": {"type": "string", "enum": list(SELECTIONS)},
            "filter": {
                "type": ["string", "null"],
                "description": "With rows=filter: `Column op value`, e.g. Status = Blocked.",
            },
            "name": {"type": ["string", "null"]},
        },
        "required": ["sheet_id", "prompt", "target_column", "rows", "filter", "name"],
        "additionalProperties": False,
    },
    writes=True,
    needs="edit",
)
def start_ai_job(context: ToolContext, sheet: Sheet, **arguments: Any) -> Proposal:
    spec = _spec(sheet, arguments)
    try:
        plan = job_services.job_plan(user=context.user, spec=spec)
        preview = job_services.job_preview(user=context.user, spec=spec)
        estimate = job_services.job_estimate(user=context.user, spec=spec, preview=preview)
    except PermissionDenied as exc:
        # Shown to the viewer as a card they cannot apply, rather than refused outright.
        return Proposal(
            summary=f"Run an AI job on {sheet.name}",
            preview={"sheet_id": sheet.pk, "prompt": spec.template, "arguments": arguments},
            blocked=str(exc),
        )
    except job_services.JobInvalid as exc:
        raise ToolError(exc.message) from exc
    rows = plan.rows.count()
    card = {
        "sheet_id": sheet.pk,
        "arguments": arguments,
        "prompt": spec.template,
        "target": plan.target.title,
        "creates_column": plan.creates_column,
        "rows": rows,
        "selection": spec.selection,
        "filter": spec.filter_text,
        "preview": [
            {
                "row_number": p.row_number,
                "inputs": p.inputs,
                "value": p.value,
                "error": p.error,
            }
            for p in preview.rows
        ],
        "preview_error": preview.error,
        "estimate": {
            "rows": estimate.rows,
            "cost": str(estimate.cost),
            "seconds": round(estimate.seconds),
            "notes": estimate.notes,
        },
    }
    return Proposal(
        summary=f"Fill {plan.target.title} in {rows} row(s) of {sheet.name} "
        f"(about {_money(estimate.cost)})",
        preview=card,
    )


@applier("start_ai_job")
def start_ai_job_apply(context: ToolContext, sheet: Sheet, preview: dict) -> Outcome:
    spec = _spec(sheet, preview["arguments"])
    try:
        job = job_services.job_create(user=context.user, spec=spec)
        job = job_services.job_start(user=context.user, job_id=job.pk)
    except job_services.JobInvalid as exc:
        return Outcome(status="failed", text=f"The job did not start: {exc.message}")
    return Outcome(
        status="applied",
        text=f"Job #{job.pk} “{job.name}” started on {job.rows_total} row(s).",
        detail={"job_id": job.pk},
    )


def _job(context: ToolContext, job_id: int) -> Job:
    job = Job.objects.select_related("sheet").filter(pk=job_id).first()
    if job is None or (job.owner_id != context.user.pk and not context.user.is_staff):
        raise ToolError(f"You have no job #{job_id}.")
    return job


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.pk,
        "name": job.name,
        "sheet": job.sheet.name,
        "target_column": job.target_title,
        "status": job.status,
        "reason": job.reason,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "rows_failed": job.rows_failed,
        "rows_skipped": job.rows_skipped,
        "cost": str(job.cost),
    }


@tool(
    name="get_job",
    description="The status and progress of one of the user's AI jobs.",
    parameters={
        "type": "object",
        "properties": {"job_id": {"type": "integer"}},
        "required": ["job_id"],
        "additionalProperties": False,
    },
)
def get_job(context: ToolContext, sheet: None, *, job_id: int) -> dict:
    return job_summary(_job(context, job_id))


@tool(
    name="cancel_job",
    description="Propose cancelling one of the user's AI jobs; it stops when they press Apply.",
    parameters={
        "type": "object",
        "properties": {"job_id": {"type": "integer"}},
        "required": ["job_id"],
        "additionalProperties": False,
    },
    writes=True,
    needs="edit",
)
def cancel_job(context: ToolContext, sheet: None, *, job_id: int) -> Proposal:
    job = _job(context, job_id)
    return Proposal(
        summary=f"Cancel job #{job.pk} “{job.name}” ({job.rows_done} of {job.rows_total} done)",
        preview={"job": job_summary(job)},
        sheet_id=job.sheet_id,
    )


@applier("cancel_job")
def cancel_job_apply(context: ToolContext, sheet: Sheet | None, preview: dict) -> Outcome:
    try:
        job = job_services.job_cancel(user=context.user, job_id=preview["job"]["job_id"])
    except (job_services.JobInvalid, PermissionDenied, ObjectDoesNotExist) as exc:
        return Outcome(status="failed", text=f"The job was not cancelled: {exc}")
    return Outcome(status="applied", text=f"Job #{job.pk} is {job.get_status_display()}.")
