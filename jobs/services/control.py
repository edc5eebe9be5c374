"""Creating a job and steering it: start, pause, resume, cancel, retry failed rows.

Each function checks that the user owns the job (or is staff) and still holds edit on the sheet,
changes records with conditional status transitions, and enqueues the runner (jobs/runner.py)
once the transaction commits. Progress goes out on the job's group (jobs/events.py).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from jobs.events import job_progress_send
from jobs.models import Job, JobRow
from jobs.services.plan import Estimate, JobInvalid, JobSpec, Plan, job_plan, rows_selected
from sheets import client
from sheets.models import Column
from sheets.services import sheet_for_edit


def _column_create(plan: Plan) -> Column:
    """Add the new target column to the sheet and to the mirror."""
    target = plan.target
    payload: dict[str, Any] = {"title": target.title, "type": target.type, "index": target.index}
    if target.options:
        payload["options"] = list(target.options)
    created = client.column_add(sheet_id=plan.sheet.pk, column=payload)
    return Column.objects.create(
        id=int(created["id"]),
        sheet=plan.sheet,
        index=int(created.get("index", target.index)),
        title=created.get("title") or target.title,
        type=created.get("type") or target.type,
        options=list(created.get("options") or target.options),
        validation=bool(created.get("validation")),
    )


def job_create(*, user, spec: JobSpec, estimate: Estimate | None = None) -> Job:
    """A queued job and one JobRow per selected row, holding the value each row had.

    A new target column is created on the sheet here. Nothing runs until `job_start`.
    """
    plan = job_plan(user=user, spec=spec)
    target = _column_create(plan) if plan.creates_column else plan.target
    with transaction.atomic():
        now = timezone.now()
        job = Job(
            sheet=plan.sheet,
            owner=user,
            name=spec.name or f"Fill {target.title}",
            template=spec.template,
            target_column_id=target.pk,
            target_title=target.title,
            input_column_ids=[c.pk for c in plan.inputs],
            selection=spec.selection,
            filter_text=spec.filter_text,
            row_ids=list(spec.row_ids),
            batch_size=spec.batch_size,
            priority=spec.priority,
            deployment=plan.deployment.name,
            max_tokens=plan.max_tokens,
            output_spec=dataclasses.asdict(plan.output),
            budget=spec.budget,
            estimated_cost=estimate.cost if estimate else None,
            read_at=now,
        )
        job.full_clean()
        job.save()
        rows = rows_selected(
            spec, plan.sheet, list(Column.objects.filter(sheet=plan.sheet)), target
        )
        JobRow.objects.bulk_create(
            (
                JobRow(
                    job=job,
                    row_id=row_id,
                    row_number=row_number,
                    value_before=(cells.get(str(target.pk)) or {}).get("value"),
                )
                for row_id, row_number, cells in rows.values_list("pk", "row_number", "cells")
            ),
            batch_size=1000,
        )
        job.rows_total = JobRow.objects.filter(job=job).count()
        job.save(update_fields=["rows_total"])
    return job


def job_for_owner(*, user, job_id: int) -> Job:
    """The job, if `user` may steer it: its owner or staff, still holding edit on the sheet."""
    job = Job.objects.select_related("sheet").get(pk=job_id)
    if job.owner_id != user.pk and not user.is_staff:
        raise PermissionDenied("Only the job's owner or staff can change it.")
    sheet_for_edit(user=user, sheet_id=job.sheet_id)
    return job


_PRIORITY = {Job.Priority.HIGH: 0, Job.Priority.NORMAL: 3, Job.Priority.LOW: 6}


def job_enqueue(*, job: Job, countdown: float = 0) -> None:
    """Queue the runner for `job` once the transaction commits (a queued job only)."""
    from jobs.tasks import job_run_task

    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    transaction.on_commit(
        lambda: job_run_task.apply_async(
            (job.pk,), priority=_PRIORITY[job.priority], countdown=countdown or None
        )
    )


def _changed(job: Job) -> Job:
    job_progress_send(job=job)
    return job


def job_start(*, user, job_id: int) -> Job:
    job = job_for_owner(user=user, job_id=job_id)
    if job.status != Job.Status.QUEUED or job.started_at is not None:
        raise JobInvalid("This job has started already.")
    with transaction.atomic():
        job.started_at = timezone.now()
        job.save(update_fields=["started_at"])
        job_enqueue(job=job)
    return _changed(job)


def job_pause(*, user, job_id: int) -> Job:
    """A running job stops within a batch: rows it already answered are written first."""
    job = job_for_owner(user=user, job_id=job_id)
    if not job.transition(
        to=Job.Status.PAUSED,
        frm=(Job.Status.QUEUED, Job.Status.RUNNING),
        reason=f"Paused by {user.get_username()}.",
    ):
        raise JobInvalid(f"A {job.get_status_display()} job cannot be paused.")
    return _changed(job)


def job_resume(*, user, job_id: int, budget: Decimal | None = None) -> Job:
    job = job_for_owner(user=user, job_id=job_id)
    fields: dict[str, Any] = {"reason": ""}
    if budget is not None:
        fields["budget"] = budget
    with transaction.atomic():
        if not job.transition(to=Job.Status.QUEUED, frm=Job.Status.PAUSED, **fields):
            raise JobInvalid(f"Only a paused job can be resumed; this one is {job.status}.")
        job_enqueue(job=job)
    return _changed(job)


def job_cancel(*, user, job_id: int) -> Job:
    """Stop a job within a batch; rows it has not written stay as they are in the sheet."""
    job = job_for_owner(user=user, job_id=job_id)
    reason = f"Cancelled by {user.get_username()}."
    if job.transition(to=Job.Status.CANCELLING, frm=Job.Status.RUNNING, reason=reason):
        return _changed(job)
    with transaction.atomic():
        if not job.transition(
            to=Job.Status.CANCELLED, frm=(Job.Status.QUEUED, Job.Status.PAUSED), reason=reason
        ):
            raise JobInvalid(f"A {job.get_status_display()} job cannot be cancelled.")
        job_rows_close(job=job, reason="The job was cancelled before this row was written.")
    return _changed(job)


def job_rows_close(*, job: Job, reason: str) -> None:
    """Rows a stopped job never wrote become skipped, with why."""
    JobRow.objects.filter(
        job=job, status__in=(JobRow.Status.PENDING, JobRow.Status.RUNNING)
    ).update(status=JobRow.Status.SKIPPED, error=reason)
    job_counts_refresh(job=job)


def job_retry_failed(*, user, job_id: int) -> Job:
    """Run the failed rows again (only those), keeping the rest as they are."""
    job = job_for_owner(user=user, job_id=job_id)
    with transaction.atomic():
        if not job.transition(
            to=Job.Status.QUEUED,
            frm=(Job.Status.COMPLETED_WITH_ERRORS, Job.Status.FAILED, Job.Status.PAUSED),
            reason="",
            finished_at=None,
        ):
            raise JobInvalid("Failed rows can be retried once the job has stopped.")
        retried = JobRow.objects.filter(job=job, status=JobRow.Status.FAILED).update(
            status=JobRow.Status.PENDING,
            error="",
            attempts=0,
            has_output=False,
            output=None,
            write_started_at=None,
        )
        if not retried and not JobRow.objects.filter(job=job, status=JobRow.Status.PENDING):
            raise JobInvalid("This job has no failed rows to retry.")
        job_counts_refresh(job=job)
        job_enqueue(job=job)
    return _changed(job)


def job_counts_refresh(*, job: Job) -> Job:
    """Counts, tokens and cost from the job's rows (right after any crash or resume)."""
    totals = JobRow.objects.filter(job=job).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status=JobRow.Status.DONE)),
        failed=Count("id", filter=Q(status=JobRow.Status.FAILED)),
        skipped=Count("id", filter=Q(status=JobRow.Status.SKIPPED)),
        prompt=Sum("prompt_tokens"),
        completion=Sum("completion_tokens"),
        cost=Sum("cost"),
    )
    fields = {
        "rows_total": totals["total"],
        "rows_done": totals["done"],
        "rows_failed": totals["failed"],
        "rows_skipped": totals["skipped"],
        "prompt_tokens": totals["prompt"] or 0,
        "completion_tokens": totals["completion"] or 0,
        "cost": totals["cost"] or Decimal(0),
    }
    Job.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    return job
