"""Crash safety: short sync locks renewed by a heartbeat, no waiting in workers, Redis outages."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings as django_settings

from core.processes import process_stop
from core.ratelimit import redis_client
from sheets import locks, poll, sync, tasks
from sheets.client import SmartsheetUnavailable
from sheets.locks import sheet_sync_lock, sheet_sync_locked
from sheets.models import Row, Sheet
from tests.conftest import ROOT, START_TIMEOUT, run_in_thread, server_env, wait_until
from tests.sheets.conftest import run_sent_syncs, sheet_id_named


def _lock_key(sheet_id: int) -> str:
    return f"{django_settings.REDIS_PREFIX}:sheets:sync:{sheet_id}"


def test_a_sync_lock_lives_briefly_and_is_renewed_while_its_sync_works(tracker, settings):
    settings.SHEETS_SYNC_LOCK_TTL = 1
    redis = redis_client()
    with sheet_sync_lock(sheet_id=tracker.pk) as held:
        assert 0 < redis.pttl(_lock_key(tracker.pk)) <= 1000
        # Three renewals span more than two TTLs: without them the lock would be gone.
        wait_until(lambda: held.renewals >= 3, timeout=10, what="the lock to be renewed")
        assert sheet_sync_locked(sheet_id=tracker.pk)
        assert not held.lost.is_set()
    assert not sheet_sync_locked(sheet_id=tracker.pk)


def test_a_sync_task_finding_its_sheet_busy_comes_back_later_instead_of_waiting(
    tracker, sent_syncs, settings
):
    settings.SHEETS_SYNC_BUSY_RETRY = 7.0
    other = redis_client().lock(_lock_key(tracker.pk), timeout=60)
    assert other.acquire(blocking=False)
    try:
        calls_before = sync.client.api_calls_made()
        assert tasks.sheet_sync_task(tracker.pk) == "skipped"
        assert sync.client.api_calls_made() == calls_before
    finally:
        other.release()
    assert sent_syncs == [{"sheet_id": tracker.pk, "full": False, "countdown": 7.0}]
    assert run_sent_syncs(sent_syncs) == ["unchanged"]


def test_with_redis_down_a_sync_asks_to_be_retried_with_one_clear_log_line(
    tracker, monkeypatch, caplog
):
    # The per-process client is cached, so the lock layer's lookup is what points elsewhere:
    # nothing listens on port 1.
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(locks, "redis_client", lambda: down)
    caplog.set_level(logging.WARNING)
    with pytest.raises(SmartsheetUnavailable):
        sync.sheet_sync(sheet_id=tracker.pk)
    # The task autoretries on SmartsheetUnavailable.
    assert SmartsheetUnavailable in tasks.sheet_sync_task.autoretry_for
    lines = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].exc_info is None  # an expected condition: no traceback
    assert Sheet.objects.get(pk=tracker.pk).sync_state == Sheet.SyncState.OK  # nothing touched


def test_with_redis_down_a_poll_round_is_skipped_with_a_log_line_not_a_traceback(
    tracker, monkeypatch, caplog
):
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(locks, "redis_client", lambda: down)
    monkeypatch.setattr(sync, "redis_client", lambda: down)
    Sheet.objects.filter(pk=tracker.pk).update(sync_state=Sheet.SyncState.SYNCING)
    caplog.set_level(logging.WARNING)
    assert tasks.sheets_poll() == "skipped: try again next round"
    assert [r.exc_info for r in caplog.records if "Redis is unreachable" in r.getMessage()] == [
        None
    ]


@pytest.fixture
def doomed_worker(django_db_setup, django_db_blocker):
    """A real Celery worker of this test's own, with 2 s sync locks, that the test kills.

    It consumes a queue no other worker of the suite does (its name is `proc.queue`).
    """
    queue = f"doomed-{os.getpid()}"
    log = open(ROOT / "var" / "test-celery-doomed.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue),
            *("-P", "threads", "-c", "2", "-l", "INFO"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        cwd=ROOT,
        env=server_env(SHEETS_SYNC_LOCK_TTL="2", SHEETS_SYNC_PAGE_SIZE="100"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from config.celery import app

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited early; see {log.name}")
        return bool(app.control.ping(timeout=0.5))

    try:
        wait_until(ready, timeout=START_TIMEOUT, what="the Celery worker to answer a ping")
        proc.queue = queue
        yield proc
    finally:
        process_stop(proc)
        log.close()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sync_frees_the_sheet_and_the_poller_finishes_the_sync(
    sandbox, doomed_worker, monkeypatch
):
    sheet_id = sheet_id_named(sandbox, "Customer Feedback")  # 2,000 rows: 20 pages of 100
    sync.sheets_discover(sheet_ids=[sheet_id])
    sandbox.configure(smartsheet={"latency_ms": 150})
    tasks.sheet_sync_task.apply_async((sheet_id, True), queue=doomed_worker.queue)
    wait_until(
        lambda: Row.objects.filter(sheet_id=sheet_id).count() >= 300,
        timeout=60,
        what="the worker to store a few pages",
    )
    os.killpg(doomed_worker.pid, signal.SIGKILL)  # the whole worker, as the OOM killer would
    doomed_worker.wait()
    half = Sheet.objects.get(pk=sheet_id)
    assert half.sync_state == Sheet.SyncState.SYNCING
    assert Row.objects.filter(sheet_id=sheet_id).count() < 2000
    # Its 2 s lock, no longer renewed, expires: the sheet is not blocked for long.
    wait_until(
        lambda: not sheet_sync_locked(sheet_id=sheet_id),
        timeout=10,
        what="the dead worker's lock to expire",
    )
    sandbox.configure(smartsheet={"latency_ms": 0})

    sent: list = []
    monkeypatch.setattr(tasks.sheet_sync_task, "apply_async", lambda args, **kw: sent.append(args))
    # What beat runs every SHEETS_RESUME_INTERVAL.
    assert tasks.syncs_resume() == "1 interrupted syncs resumed"
    assert sent == [(sheet_id, True)]
    assert run_in_thread(tasks.sheet_sync_task, *sent[0]).startswith("full:")
    done = Sheet.objects.get(pk=sheet_id)
    assert done.sync_state == Sheet.SyncState.OK
    assert Row.objects.filter(sheet_id=sheet_id).count() == done.row_count == 2000


@pytest.mark.django_db(transaction=True)
def test_a_sync_that_lost_its_lock_stops_writing_and_leaves_the_sheet_to_the_poller(
    sandbox, settings, sent_syncs
):
    settings.SHEETS_SYNC_LOCK_TTL = 3  # renewed every second
    settings.SHEETS_SYNC_PAGE_SIZE = 100
    sheet_id = sheet_id_named(sandbox, "Customer Feedback")  # 20 pages of 100
    sync.sheets_discover(sheet_ids=[sheet_id])
    sandbox.configure(smartsheet={"latency_ms": 250})  # 20 pages: 5 s or more
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(sync.sheet_sync, sheet_id=sheet_id)
        wait_until(
            lambda: Row.objects.filter(sheet_id=sheet_id).count() >= 200,
            timeout=60,
            what="the sync to store a few pages",
        )
        # The key vanishes as if the sync had stalled past its TTL (or Redis failed over).
        redis_client().delete(_lock_key(sheet_id))
        assert running.result(timeout=60).kind == "skipped"
    stored = Row.objects.filter(sheet_id=sheet_id).count()
    assert stored < 2000
    assert Sheet.objects.get(pk=sheet_id).sync_state == Sheet.SyncState.SYNCING

    sandbox.configure(smartsheet={"latency_ms": 0})
    assert poll.sheets_poll().resumed == [sheet_id]
    assert run_sent_syncs(sent_syncs)[0].startswith("full:")
    assert Row.objects.filter(sheet_id=sheet_id).count() == 2000


def test_an_interrupted_sync_is_looked_for_often_enough_to_be_taken_up_within_a_minute():
    # The production schedule (the suite's settings turn beat's schedule off).
    from config import settings

    entry = settings.CELERY_BEAT_SCHEDULE["sheets-resume"]
    assert entry["task"] == "sheets.tasks.syncs_resume"
    assert settings.SHEETS_SYNC_LOCK_TTL + entry["schedule"] < 60
