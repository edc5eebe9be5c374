"""Celery tasks: thin wrappers around jobs.runner (ids in, re-read inside)."""

from __future__ import annotations

from celery import shared_task

from jobs import runner, scheduling


@shared_task(
    name="jobs.run",
    acks_late=True,
    # A run re-queues itself after JOBS_SLICE_SECONDS (5 min by default), well inside these.
    soft_time_limit=14 * 60,
    time_limit=15 * 60,
)
def job_run_task(job_id: int) -> str:
    return runner.job_run(job_id=job_id)


@shared_task(name="jobs.sweep", soft_time_limit=60, time_limit=90)
def jobs_sweep() -> list[int]:
    """Beat: re-queue jobs whose worker stopped heartbeating."""
    return scheduling.jobs_sweep()
