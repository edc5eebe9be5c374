"""What a job announces while it runs, and where: one group per job, `job.<id>`.

Message (sent with `group_send`, so a consumer method `job_progress` receives it):
    {"type": "job.progress", "job_id": int, "sheet_id": int, "status": str, "reason": str,
     "rows_total": int, "rows_done": int, "rows_failed": int, "rows_skipped": int,
     "percent": int, "rows_per_second": float, "eta_seconds": float | None,
     "prompt_tokens": int, "completion_tokens": int, "cost": str (USD, decimal),
     "working": [row ids being answered now], "finished": [row ids done/failed/skipped since
     the last message]}
`working` and `finished` list at most MAX_LISTED_IDS ids each (the grid marks those cells).
A page opened mid-run renders the job from the database (jobs.selectors), then listens.

Open grids of the job's sheet hear it too, on the sheet's group (sheets/events.py), as one
compact message per progress message (a consumer method `sheet_jobs` receives it):
    {"type": "sheet.jobs", "sheet_id": int, "job_id": int, "column_id": int (the target),
     "active": bool (false once the job stops: its marks go),
     "workers": [{"id", "name", "percent", "url"}: every job running on the sheet, for the
                 presence bar],
     "marks": {"<row id>": [state, title] | null}: the target cells of `working` and `finished`
               rows: "working", "failed" with the reason, or null (written, skipped: unmarked)}
The runner sends one a heartbeat (JOBS_HEARTBEAT_SECONDS), so a grid gets a few a second at most.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import reverse

from jobs.models import Job, JobRow
from sheets.events import sheet_group
from sheets.grid import CellMark, GridWorker

logger = logging.getLogger(__name__)

MAX_LISTED_IDS = 500


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def job_progress_message(
    *,
    job: Job,
    rows_per_second: float = 0.0,
    working: list[int] | None = None,
    finished: list[int] | None = None,
) -> dict:
    remaining = max(0, job.rows_total - job.rows_finished)
    eta = remaining / rows_per_second if rows_per_second > 0 else None
    return {
        "type": "job.progress",
        "job_id": job.pk,
        "sheet_id": job.sheet_id,
        "status": job.status,
        "reason": job.reason,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "rows_failed": job.rows_failed,
        "rows_skipped": job.rows_skipped,
        "percent": job.percent,
        "rows_per_second": round(rows_per_second, 2),
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "cost": str(job.cost),
        "working": sorted(working or ())[:MAX_LISTED_IDS],
        "finished": sorted(finished or ())[:MAX_LISTED_IDS],
    }


def job_grid_worker(job: Job) -> GridWorker:
    """The job as the grid's presence bar shows it, like a collaborator."""
    return GridWorker(
        id=job.pk,
        name=job.name or f"Fill {job.target_title}",
        percent=job.percent,
        url=reverse("jobs:detail", args=[job.pk]),
    )


MARK_STATES = {  # a JobRow's status -> how the grid marks its target cell
    JobRow.Status.PENDING: "queued",
    JobRow.Status.RUNNING: "working",
    JobRow.Status.FAILED: "failed",
}


def job_cell_mark(*, job_id: int, status: str, error: str = "") -> CellMark | None:
    """How the grid marks a target cell whose JobRow has `status` (None: nothing to show)."""
    state = MARK_STATES.get(status)
    if state is None:
        return None
    title = f"failed: {error}" if state == "failed" and error else state
    return CellMark(state=state, title=title, job_id=job_id)


def sheet_jobs_message(*, job: Job, working: list[int], finished: list[int]) -> dict:
    """The grid's message for one progress message of `job` (two small queries)."""
    from jobs.selectors import jobs_running_on_sheet  # selectors import this module

    running = jobs_running_on_sheet(sheet_id=job.sheet_id).order_by("pk")
    workers = [asdict(job_grid_worker(j)) for j in running]
    active = any(w["id"] == job.pk for w in workers)
    marks: dict[str, list[str] | None] = {}
    if active and finished:
        marks = {str(pk): None for pk in finished}
        failed = JobRow.objects.filter(
            job=job, row_id__in=finished, status=JobRow.Status.FAILED
        ).values_list("row_id", "error")
        for row_id, error in failed:
            mark = job_cell_mark(job_id=job.pk, status=JobRow.Status.FAILED, error=error)
            marks[str(row_id)] = [mark.state, mark.title]
    if active:
        mark = job_cell_mark(job_id=job.pk, status=JobRow.Status.RUNNING)
        for pk in working:
            marks[str(pk)] = [mark.state, mark.title]
    return {
        "type": "sheet.jobs",
        "sheet_id": job.sheet_id,
        "job_id": job.pk,
        "column_id": job.target_column_id,
        "active": active,
        "workers": workers,
        "marks": marks,
    }


def job_progress_send(
    *,
    job: Job,
    rows_per_second: float = 0.0,
    working: list[int] | None = None,
    finished: list[int] | None = None,
) -> dict:
    message = job_progress_message(
        job=job, rows_per_second=rows_per_second, working=working, finished=finished
    )
    try:
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(job_group(job.pk), message)
        grid = sheet_jobs_message(job=job, working=message["working"], finished=message["finished"])
        async_to_sync(layer.group_send)(sheet_group(job.sheet_id), grid)
    except Exception as exc:  # progress is a courtesy: the job goes on without Redis
        logger.warning("job %s: progress not sent (%s)", job.pk, exc)
    return message
