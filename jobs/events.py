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
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from jobs.models import Job

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
        async_to_sync(get_channel_layer().group_send)(job_group(job.pk), message)
    except Exception as exc:  # progress is a courtesy: the job goes on without Redis
        logger.warning("job %s: progress not sent (%s)", job.pk, exc)
    return message
