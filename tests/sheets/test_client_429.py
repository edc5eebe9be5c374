"""Smartsheet 429s under concurrency: once one arrives, no thread sends inside its window."""

from __future__ import annotations

import threading

from sheets import client
from tests.jobs.test_quota import _watching_smartsheet
from tests.sheets.conftest import sheet_id_named, smartsheet_stats

THREADS = 6
CALLS_EACH = 6


def test_threads_sharing_the_limiter_send_nothing_inside_a_429s_window(
    sandbox, settings, monkeypatch
):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    settings.SMARTSHEET_RATE_LIMIT_PAUSE = 0.3
    settings.SMARTSHEET_RETRY_MAX_TRIES = 8
    settings.SMARTSHEET_RETRY_FACTOR = 0.001  # the limiter's pause, not backoff, must do the wait
    # Requests take a while, so several are always in flight when a 429 comes back.
    sandbox.configure(smartsheet={"fail_rate": 0.3, "fail_codes": [4003], "latency_ms": 40})
    errors: list[BaseException] = []

    def calls():
        try:
            for _ in range(CALLS_EACH):
                client.sheet_version_get(sheet_id=sheet_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with _watching_smartsheet(monkeypatch) as watch:
        threads = [threading.Thread(target=calls) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert errors == []
    refused = smartsheet_stats(sandbox)["injected_failures"]
    assert refused >= 2 and len(watch.pauses) == refused
    # Requests already in flight may land in a window; none was sent once a 429 had come back.
    assert watch.sent_inside_a_pause() == []
    assert len(watch.sent) == THREADS * CALLS_EACH + refused
