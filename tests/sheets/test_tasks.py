"""The sheets tasks finish cleanly even when Redis goes away while they run."""

from __future__ import annotations

import pytest
import redis
from celery.app.trace import build_tracer

from sheets import poll, sync, tasks
from sheets.poll import PollRound
from sheets.refresh import SyncResult


@pytest.mark.parametrize(
    ("task", "args"), [(tasks.sheets_poll, ()), (tasks.sheet_sync_task, (1001,))]
)
def test_a_task_that_did_its_work_succeeds_though_redis_vanished_before_it_ended(
    task, args, monkeypatch
):
    # Nobody reads these results; storing one in Redis after the work was done turned a
    # finished sync into "raised unexpected: ConnectionError" with a traceback in the log.
    monkeypatch.setattr(poll, "sheets_poll", lambda: PollRound())
    monkeypatch.setattr(sync, "sheet_sync_pending_clear", lambda **kwargs: None)
    monkeypatch.setattr(sync, "sheet_sync", lambda **kwargs: SyncResult(1001, "unchanged"))

    def redis_gone(*args, **kwargs):
        raise redis.ConnectionError("Error while reading from 127.0.0.1:6379 : Connection reset")

    monkeypatch.setattr(task.backend, "store_result", redis_gone)
    trace = build_tracer(task.name, task, app=task.app, eager=False)
    outcome = trace("a-task-id", args, {}, {"id": "a-task-id", "delivery_info": {}})
    assert outcome.info is None, outcome.info  # a failure carries its state and exception
    assert outcome.retval in (
        "0 syncs requested, 0 interrupted syncs resumed, 0 webhooks repaired",
        "unchanged",
    )
