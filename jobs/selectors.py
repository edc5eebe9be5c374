"""Reads for the jobs pages, the grid and chat tools: the same state the runner publishes,
from the database, so a page opened or reloaded mid-run starts right, then goes live."""

from __future__ import annotations

from django.db.models import Case, F, FilteredRelation, IntegerField, Q, QuerySet, Value, When
from django.http import Http404

from jobs.events import MARK_STATES, job_cell_mark, job_grid_worker, job_progress_message
from jobs.models import Job, JobRow
from sheets.grid import CellMark, GridWorker
from sheets.selectors import sheet_role_for


def jobs_visible_to(user) -> QuerySet[Job]:
    """The user's own jobs, newest first; staff see everyone's."""
    if not user.is_authenticated:
        return Job.objects.none()
    jobs = Job.objects.select_related("sheet", "owner")
    return jobs if user.is_staff else jobs.filter(owner=user)


def job_visible(*, user, job_id: int) -> Job | None:
    return jobs_visible_to(user).filter(pk=job_id).first()


def job_can_see(*, user, job: Job) -> bool:
    return user.is_authenticated and (user.is_staff or job.owner_id == user.pk)


def job_for_viewer(*, user, job_id: int) -> Job:
    """The job if `user` may see it; Http404 otherwise (no hint that it exists)."""
    job = job_visible(user=user, job_id=job_id)
    if job is None:
        raise Http404("No such job.")
    return job


def job_can_steer(*, user, job: Job) -> bool:
    """Its owner or staff, still holding edit on the sheet (the services check the same)."""
    if not job_can_see(user=user, job=job):
        return False
    return sheet_role_for(user=user, sheet=job.sheet) == "edit"


def job_actions(job: Job) -> list[str]:
    """What can be done to the job now: pause, resume, cancel, retry (failed rows), undo."""
    status = job.status
    actions = []
    if status in (Job.Status.QUEUED, Job.Status.RUNNING):
        actions.append("pause")
    if status == Job.Status.PAUSED:
        actions.append("resume")
    if status in (Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.PAUSED):
        actions.append("cancel")
    if job.rows_failed and status in (
        Job.Status.COMPLETED_WITH_ERRORS,
        Job.Status.FAILED,
        Job.Status.PAUSED,
    ):
        actions.append("retry")
    if job.rows_done and status not in Job.ACTIVE and job.undone_at is None:
        actions.append("undo")
    return actions


def job_state(job: Job) -> dict:
    """The figures a page shows (the progress message's shape, from the database)."""
    return job_progress(job=job)


def job_rows(*, job: Job) -> QuerySet[JobRow]:
    return job_rows_for_page(job=job)


def job_progress(*, job: Job) -> dict:
    """The progress message (jobs/events.py's shape) as the database has it now."""
    rate = 0.0
    if job.started_at and job.status == Job.Status.RUNNING and job.heartbeat_at:
        elapsed = (job.heartbeat_at - job.started_at).total_seconds()
        rate = job.rows_finished / elapsed if elapsed > 1 else 0.0
    working = []
    if job.status == Job.Status.RUNNING:
        working = list(
            JobRow.objects.filter(
                job=job, status=JobRow.Status.RUNNING, has_output=False
            ).values_list("row_id", flat=True)[:500]
        )
    return job_progress_message(job=job, rows_per_second=rate, working=working)


def job_rows_for_page(*, job: Job) -> QuerySet[JobRow]:
    """The job's rows, failures first, then skipped, then the rest in sheet order."""
    order = Case(
        When(status=JobRow.Status.FAILED, then=Value(0)),
        When(status=JobRow.Status.SKIPPED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return JobRow.objects.filter(job=job).order_by(order, "row_number", "pk")


def jobs_running_on_sheet(*, sheet_id: int) -> QuerySet[Job]:
    """Jobs the grid shows like collaborators (name and progress in the presence bar)."""
    return Job.objects.filter(
        sheet_id=sheet_id, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)
    ).exclude(started_at=None)


def sheet_job_activity(
    *, sheet_id: int, row_ids: list[int]
) -> tuple[list[GridWorker], dict[tuple[int, int], CellMark]]:
    """The grid's view of the jobs running on a sheet, in one query whatever the rows: each job
    as a collaborator (name, percent), and the target cells of `row_ids` it has not written yet
    marked queued / working / failed. (Registered with sheets.grid in jobs/apps.py.)"""
    jobs = jobs_running_on_sheet(sheet_id=sheet_id).only(
        "id",
        "name",
        "target_column_id",
        "target_title",
        "status",
        "rows_total",
        "rows_done",
        "rows_failed",
        "rows_skipped",
    )
    if row_ids:
        # One row per (job, marked row); a job with none of these rows marked still comes once.
        marked = FilteredRelation(
            "rows",
            condition=Q(rows__row_id__in=row_ids, rows__status__in=list(MARK_STATES)),
        )
        jobs = jobs.annotate(marked=marked).annotate(
            mark_row=F("marked__row_id"),
            mark_status=F("marked__status"),
            mark_error=F("marked__error"),
        )
    workers: dict[int, GridWorker] = {}
    marks: dict[tuple[int, int], CellMark] = {}
    for job in jobs.order_by("pk"):
        workers.setdefault(job.pk, job_grid_worker(job))
        if getattr(job, "mark_row", None) is not None:
            marks[(job.mark_row, job.target_column_id)] = job_cell_mark(
                job_id=job.pk, status=job.mark_status, error=job.mark_error
            )
    return list(workers.values()), marks
