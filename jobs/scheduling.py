"""Who runs when: the beat sweep that re-queues jobs whose worker died, and the list of running
jobs per deployment by priority, so lower ones make room for higher ones."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.redis import redis_client
from jobs.models import Job
from jobs.services import job_enqueue, job_rows_close

logger = logging.getLogger(__name__)

_RANK = {Job.Priority.HIGH: 0, Job.Priority.NORMAL: 1, Job.Priority.LOW: 2}


def _key(job: Job) -> str:
    return f"{settings.REDIS_PREFIX}:jobs:active:{job.deployment}"


def _member(job: Job) -> str:
    return f"{_RANK.get(job.priority, 1)}:{job.pk}"


def priority_announce(*, job: Job, ttl: float) -> bool:
    """Note that `job` runs (for `ttl` seconds); True when a job of higher priority runs on the
    same deployment. Redis down: False (the shared limiter still splits the quota)."""
    now = time.time()
    try:
        pipe = redis_client().pipeline()
        pipe.zadd(_key(job), {_member(job): now + ttl})
        pipe.zremrangebyscore(_key(job), "-inf", now)
        pipe.zrange(_key(job), 0, -1)
        pipe.expire(_key(job), 300)
        members = pipe.execute()[2]
    except Exception as exc:
        logger.info("job %s: priorities not shared (%s)", job.pk, exc)
        return False
    rank = _RANK.get(job.priority, 1)
    return any(int(m.split(b":")[0]) < rank for m in members)


def priority_leave(*, job: Job) -> None:
    try:
        redis_client().zrem(_key(job), _member(job))
    except Exception as exc:
        logger.info("job %s: could not leave the priority list (%s)", job.pk, exc)


def jobs_sweep() -> list[int]:
    """Re-queue jobs whose worker stopped beating (killed, lost); they resume where they were.

    A cancelling job whose worker died is cancelled. Returns the ids of the jobs sent again.
    """
    stale = timezone.now() - timedelta(seconds=settings.JOBS_STALE_SECONDS)
    requeued = []
    for job in Job.objects.filter(
        status__in=(Job.Status.RUNNING, Job.Status.CANCELLING), heartbeat_at__lt=stale
    ):
        if job.status == Job.Status.CANCELLING:
            if job.transition(to=Job.Status.CANCELLED, frm=Job.Status.CANCELLING):
                job_rows_close(job=job, reason="The job was cancelled before this row was written.")
            continue
        if job.transition(to=Job.Status.QUEUED, frm=Job.Status.RUNNING, run_token=""):
            logger.warning("job %s: its worker stopped answering; queued again", job.pk)
            job_enqueue(job=job)
            requeued.append(job.pk)
    # A queued job whose task message was lost (Redis emptied by a restart, a purge) is sent
    # again; a duplicate is harmless, as only one run can claim the job.
    lost = timezone.now() - timedelta(seconds=settings.JOBS_QUEUED_RESEND_SECONDS)
    for job in Job.objects.filter(
        status=Job.Status.QUEUED, started_at__isnull=False, heartbeat_at__lt=lost
    ):
        logger.warning("job %s: queued for long; its task is sent again", job.pk)
        job_enqueue(job=job)
        requeued.append(job.pk)
    return requeued
