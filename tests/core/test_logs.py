"""Expected conditions are logged as one line a person can read, never as a traceback."""

from __future__ import annotations

import logging

from celery.beat import ScheduleEntry, Scheduler
from kombu.exceptions import OperationalError

from config.celery import app
from sheets.tasks import sheets_poll


def test_a_scheduled_task_beat_could_not_send_is_one_warning_line_without_a_traceback(
    caplog, monkeypatch
):
    def broker_away(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    entry = ScheduleEntry(name="sheets-poll", task=sheets_poll.name, app=app)
    scheduler = Scheduler(app, lazy=True)
    monkeypatch.setattr(sheets_poll, "apply_async", broker_away)

    with caplog.at_level(logging.INFO, logger="celery.beat"):
        scheduler.apply_entry(entry, producer=object())

    [failure] = [r for r in caplog.records if r.name == "celery.beat" and "could not" in r.message]
    assert failure.levelname == "WARNING"
    assert "Connection refused" in failure.getMessage()
    assert "Traceback" not in caplog.text
    assert "File " not in caplog.text  # beat adds a stack dump of its own to the message
