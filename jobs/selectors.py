"""Reads for the jobs pages, the grid and chat tools: the same state the runner publishes,
from the database, so a page opened or reloaded mid-run starts right, then goes live."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404

from jobs.events import job_progress_message
from jobs.models import Job, JobRow
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


def job_cell_states(*, sheet_id: int, row_ids: list[int]) -> dict[tuple[int, int], str]:
    """(row id, column id) → "queued" / "working" / "failed" for target cells of running jobs
    that are not written yet (the grid marks them)."""
    states: dict[tuple[int, int], str] = {}
    names = {
        JobRow.Status.PENDING: "queued",
        JobRow.Status.RUNNING: "working",
        JobRow.Status.FAILED: "failed",
    }
    rows = JobRow.objects.filter(
        job__in=jobs_running_on_sheet(sheet_id=sheet_id),
        row_id__in=row_ids,
        status__in=list(names),
    ).values_list("row_id", "job__target_column_id", "status")
    for row_id, column_id, status in rows:
        states[(row_id, column_id)] = names[status]
    return states
