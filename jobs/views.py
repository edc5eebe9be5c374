"""The jobs pages: the list, the new-job form (preview and estimate before Start), one job live.

Thin: each view checks access, calls one service, renders a page or (htmx) a partial.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from smartsheet.exceptions import ApiError

from jobs import selectors
from jobs.events import job_progress_message
from jobs.forms import JobForm
from jobs.models import Job, JobRow
from jobs.services import (
    Estimate,
    JobInvalid,
    JobSpec,
    UndoResult,
    job_cancel,
    job_create,
    job_estimate,
    job_pause,
    job_preview,
    job_resume,
    job_retry_failed,
    job_start,
    job_undo,
)
from sheets.client import SmartsheetUnavailable
from sheets.models import Sheet
from sheets.selectors import sheet_role_for

logger = logging.getLogger(__name__)

JOBS_PER_PAGE = 50
ROWS_PER_PAGE = 50
# A preview's estimate, signed into the form, is good for this long before Start.
ESTIMATE_MAX_AGE = 3600
_ESTIMATE_SALT = "jobs.estimate"


def index(request: HttpRequest) -> HttpResponse:
    jobs = Paginator(selectors.jobs_visible_to(request.user), JOBS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "jobs": jobs,
        "states": [(job, _list_state(job)) for job in jobs],
        "any_active": any(job.status in Job.ACTIVE for job in jobs),
    }
    if request.htmx:
        return render(request, "jobs/index.html#jobs", context)
    return render(request, "jobs/index.html", context)


def _list_state(job: Job) -> dict:
    """A row of the list: percent and ETA at the job's average pace (no query per job)."""
    rate = 0.0
    if job.status == Job.Status.RUNNING and job.started_at and job.heartbeat_at:
        elapsed = (job.heartbeat_at - job.started_at).total_seconds()
        rate = job.rows_finished / elapsed if elapsed > 1 else 0.0
    return job_progress_message(job=job, rows_per_second=rate)


# --- A new job ----------------------------------------------------------------------------------


def _sheet_for_new_job(request: HttpRequest) -> Sheet:
    """The sheet named in ?sheet=; 404 without a grant, 403 for a viewer."""
    try:
        sheet_id = int(request.GET.get("sheet", ""))
    except ValueError:
        raise Http404("No sheet here.") from None
    sheet = get_object_or_404(Sheet, pk=sheet_id)
    role = sheet_role_for(user=request.user, sheet=sheet)
    if role is None:
        raise Http404("No sheet here.")
    if role != "edit":
        raise PermissionDenied(
            "You can view this sheet but not run jobs on it; ask its owner for edit access."
        )
    return sheet


def _spec_key(spec: JobSpec) -> str:
    raw = json.dumps(dataclasses.asdict(spec), default=str, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def _estimate_token(spec: JobSpec, estimate: Estimate) -> str:
    """The estimate, signed with the spec it was made for (Start trusts only that pair)."""
    fields = dataclasses.asdict(estimate)
    fields["cost"] = str(estimate.cost)
    return signing.dumps({"spec": _spec_key(spec), "estimate": fields}, salt=_ESTIMATE_SALT)


def _estimate_from(token: str, spec: JobSpec) -> Estimate | None:
    try:
        signed = signing.loads(token, salt=_ESTIMATE_SALT, max_age=ESTIMATE_MAX_AGE)
    except signing.BadSignature:
        return None
    if signed.get("spec") != _spec_key(spec):
        return None
    fields = signed["estimate"]
    return Estimate(**{**fields, "cost": Decimal(fields["cost"])})


def job_new(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST action=preview (htmx): 3 rows answered, the estimate, then Start.
    POST action=start: the job is created and started, and the page shows it running."""
    if not request.GET.get("sheet"):
        messages.info(request, "Choose the sheet to run AI on: “Run AI on a column” on its row.")
        return redirect("sheets:index")
    sheet = _sheet_for_new_job(request)
    context: dict = {"sheet": sheet}
    if request.method != "POST":
        form = JobForm(sheet=sheet, initial={"rows": request.GET.get("rows", "")})
        if form.initial["rows"]:
            form.initial["selection"] = Job.Selection.ROWS
        return render(request, "jobs/new.html", {**context, "form": form})

    form = JobForm(request.POST, sheet=sheet)
    action = request.POST.get("action", "preview")
    if form.is_valid():
        spec = form.spec()
        try:
            if action == "start":
                estimate = _estimate_from(request.POST.get("estimate", ""), spec)
                if estimate is not None:
                    job = job_create(user=request.user, spec=spec, estimate=estimate)
                    job_start(user=request.user, job_id=job.pk)
                    return redirect("jobs:detail", job_id=job.pk)
                form.add_error(
                    None,
                    "The job changed since its preview (or was never previewed): "
                    "preview it, check the estimate, then start.",
                )
            else:
                preview = job_preview(user=request.user, spec=spec)
                context["preview"] = preview
                if not preview.error:
                    estimate = job_estimate(user=request.user, spec=spec, preview=preview)
                    context["estimate"] = estimate
                    context["estimate_token"] = _estimate_token(spec, estimate)
        except JobInvalid as exc:
            form.add_error(None, exc.message)
        except SmartsheetUnavailable as exc:
            form.add_error(None, str(exc))
        except ApiError as exc:
            logger.info("sheet %s: column not added (%s)", sheet.pk, exc)
            form.add_error(
                None,
                "Smartsheet refused to add the new column; choose another title or type.",
            )
    context["form"] = form
    if request.htmx:
        return render(request, "jobs/new.html#job-form", context)
    return render(request, "jobs/new.html", context)


# --- One job ------------------------------------------------------------------------------------


def _detail_context(request: HttpRequest, job: Job) -> dict:
    rows = Paginator(selectors.job_rows(job=job), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return {
        "job": job,
        "state": selectors.job_state(job),
        "actions": selectors.job_actions(job) if _steers(request, job) else [],
        "rows": rows,
    }


def _steers(request: HttpRequest, job: Job) -> bool:
    return selectors.job_can_steer(user=request.user, job=job)


def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job as the database has it; the page then listens on the job's socket."""
    job = selectors.job_for_viewer(user=request.user, job_id=job_id)
    context = _detail_context(request, job)
    if request.htmx and request.GET.get("part") == "rows":
        return render(request, "jobs/detail.html#rows", context)
    if request.htmx and request.GET.get("part") == "live":
        return render(request, "jobs/detail.html#live", context)
    return render(request, "jobs/detail.html", context)


_ACTIONS = {
    "pause": job_pause,
    "resume": job_resume,
    "cancel": job_cancel,
    "retry": job_retry_failed,
    "undo": job_undo,
}
_DONE = {
    "pause": "Paused: rows already answered are written first.",
    "resume": "Resumed.",
    "cancel": "Cancelling: rows not yet written stay as they are.",
    "retry": "Retrying the failed rows.",
}


def _undo_conflicts(job: Job, result: UndoResult) -> list[tuple[int, str]]:
    """(row number, why) for each cell undo left alone, in sheet order."""
    numbers = dict(
        JobRow.objects.filter(
            job=job, row_id__in=[row_id for row_id, _ in result.conflicts]
        ).values_list("row_id", "row_number")
    )
    return sorted((numbers.get(row_id, 0), why) for row_id, why in result.conflicts)


def _budget(raw: str) -> Decimal | None:
    """A new budget typed next to Resume; ValueError when it is not an amount above 0."""
    if not raw.strip():
        return None
    try:
        budget = Decimal(raw.strip())
    except InvalidOperation:
        budget = Decimal(0)
    if not budget.is_finite() or budget <= 0:
        raise ValueError("A budget is an amount in USD above 0, like 2.50.")
    return budget


def _outcome(request: HttpRequest, job: Job, action: str) -> dict:
    """Run one action; what to tell the person (a message, undo's conflicts, or an error)."""
    try:
        budget = _budget(request.POST.get("budget", "")) if action == "resume" else None
    except ValueError as exc:
        return {"error": str(exc)}
    try:
        if action == "resume":
            result = job_resume(user=request.user, job_id=job.pk, budget=budget)
        else:
            result = _ACTIONS[action](user=request.user, job_id=job.pk)
    except JobInvalid as exc:
        return {"error": exc.message}
    except SmartsheetUnavailable as exc:
        return {"error": str(exc)}
    if isinstance(result, UndoResult):
        return {"message": result.summary(), "conflicts": _undo_conflicts(job, result)}
    return {"message": _DONE[action]}


@require_POST
def job_action(request: HttpRequest, job_id: int, action: str) -> HttpResponse:
    """Pause, resume, cancel, retry failed rows or undo; answers with the job's fresh state."""
    job = selectors.job_for_viewer(user=request.user, job_id=job_id)
    if action not in _ACTIONS:
        raise Http404("No such action.")
    outcome = _outcome(request, job, action)
    if not request.htmx:
        if outcome.get("error"):
            messages.error(request, outcome["error"])
        else:
            messages.success(request, outcome["message"])
        return redirect("jobs:detail", job_id=job.pk)
    job = selectors.job_for_viewer(user=request.user, job_id=job.pk)
    context = {**_detail_context(request, job), "outcome": outcome}
    return render(request, "jobs/detail.html#live", context)
