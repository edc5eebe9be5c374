"""Jobs on real Celery worker processes: killed mid-job and resumed, and priorities."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ai.models import UsageRecord
from core.processes import process_stop
from jobs.models import Job, JobRow
from jobs.scheduling import jobs_sweep
from jobs.services import job_start
from tests.conftest import ROOT, server_env, wait_until
from tests.jobs.conftest import (
    column,
    created,
    first_rows,
    openai_requests,
    other_user_client,
    remote_values,
    spec,
)

WORKER_SETTINGS = {
    "JOBS_FLUSH_SECONDS": "0.3",
    "JOBS_HEARTBEAT_SECONDS": "0.2",
    "JOBS_MAX_IN_FLIGHT": "4",
    # A killed worker's sheet locks expire this soon (a flush takes well under a second here).
    "SMARTSHEET_WRITE_LOCK_TIMEOUT": "3",
}


@pytest.fixture
def workers() -> Iterator:
    """Start named workers on the bulk queue; the session's worker (tests/conftest.py), if this
    process started one, stops taking bulk tasks meanwhile, so only these run the jobs."""
    from config.celery import app

    others = [name for reply in app.control.ping(timeout=0.5) for name in reply]
    if others:
        app.control.cancel_consumer("bulk", destination=others, reply=True)
    started: list[subprocess.Popen] = []

    def start(name: str, *, concurrency: int = 2, **extra: str) -> subprocess.Popen:
        log = open(ROOT / "var" / f"test-jobs-{name}.log", "w")  # noqa: SIM115 (the process owns it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "bulk",
             "-P", "threads", "-c", str(concurrency), "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"{name}@%h", "-l", "INFO"],
            cwd=ROOT, env=server_env(**WORKER_SETTINGS, **extra), stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            process_stop(proc)
        if others:
            app.control.add_consumer("bulk", destination=others, reply=True)


def _count(job: Job, **filters) -> int:
    return JobRow.objects.filter(job=job, **filters).count()


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_resumes_and_writes_every_row_exactly_once(
    editor, feedback, sandbox, settings, workers
):
    sandbox.configure(openai={"latency_ms": 100}, smartsheet={"rpm": 100_000})
    rows = first_rows(feedback, 60)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    first = workers("first")
    job_start(user=editor, job_id=job.pk)
    wait_until(lambda: _count(job, status="done") >= 8, timeout=60, what="a first flush")

    first.send_signal(signal.SIGKILL)
    first.wait()
    stored = _count(job, has_output=True)
    asked = openai_requests(sandbox)
    checks = UsageRecord.objects.filter(purpose="check").count()
    assert stored < 60, "the job finished before the kill; give it more rows"

    workers("second")
    settings.JOBS_STALE_SECONDS = 1
    wait_until(lambda: job.pk in jobs_sweep(), timeout=30, what="the sweep to re-queue the job")
    wait_until(
        lambda: Job.objects.get(pk=job.pk).status == Job.Status.COMPLETED,
        timeout=60,
        what="the resumed job to complete",
    )

    # No row whose answer was stored went to the model again (each worker's start-up check of
    # the deployments is a call too; those are left out).
    asked_since = openai_requests(sandbox) - asked
    checks_since = UsageRecord.objects.filter(purpose="check").count() - checks
    assert asked_since - checks_since == 60 - stored
    sentiment = column(feedback, "Sentiment")
    theirs = other_user_client(sandbox)
    for row_id in rows:
        history = theirs.Cells.get_cell_history(feedback.pk, row_id, sentiment.pk, include_all=True)
        assert len(history.data) == 1, f"row {row_id} was written {len(history.data)} times"
    assert None not in remote_values(sandbox, feedback, "Sentiment", rows).values()
    assert Job.objects.get(pk=job.pk).runs == 2


@pytest.mark.django_db(transaction=True)
def test_a_high_priority_job_is_served_before_normal_ones_queued_earlier(
    editor, feedback, sandbox, workers
):
    """One worker slot: the long job's run ends after its slice; of the jobs then waiting, the
    high-priority one queued last is served first, the normal one queued before it waits."""
    sandbox.configure(openai={"latency_ms": 100})
    long_job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 600)))
    later_rows = first_rows(feedback, 620)[600:]  # rows the long job does not touch
    waiting = created(editor, spec(feedback, selection="rows", row_ids=later_rows))
    urgent = created(
        editor,
        spec(
            feedback,
            target="Summary",
            template="Summarize {{Feedback}}",
            selection="rows",
            row_ids=first_rows(feedback, 5),
            priority="high",
        ),
    )
    workers("only", concurrency=1, JOBS_SLICE_SECONDS="2")
    job_start(user=editor, job_id=long_job.pk)
    wait_until(lambda: _count(long_job, has_output=True) >= 5, timeout=60, what="the long job")
    job_start(user=editor, job_id=waiting.pk)
    job_start(user=editor, job_id=urgent.pk)

    wait_until(
        lambda: {Job.objects.get(pk=pk).status for pk in (urgent.pk, waiting.pk)} == {"completed"},
        timeout=90,
        what="the urgent and the waiting job",
    )
    urgent_calls = UsageRecord.objects.filter(job_id=urgent.pk).order_by("created_at")
    waiting_calls = UsageRecord.objects.filter(job_id=waiting.pk).order_by("created_at")
    assert urgent_calls.count() == 5 and waiting_calls.count() == 20
    assert urgent_calls.last().created_at < waiting_calls.first().created_at
    long_job.refresh_from_db()
    assert long_job.status in (Job.Status.QUEUED, Job.Status.RUNNING)
