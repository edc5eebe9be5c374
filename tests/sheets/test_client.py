from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings

from core.ratelimit import SlidingWindowLimiter
from sheets import client
from tests.conftest import ROOT, server_env
from tests.sheets.conftest import other_user_client, sheet_id_named, smartsheet_stats

# No django.setup() (seconds under load): the client needs settings, not apps.
CALLS_UNTIL_REFUSED = """
from sheets import client
made = 0
for _ in range({tries}):
    try:
        client.sheet_version_get(sheet_id={sheet_id})
    except client.SmartsheetUnavailable:
        break
    made += 1
print(made)
"""


def test_two_processes_together_stay_under_the_per_minute_budget(sandbox):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    sandbox.reset()  # forget the lookup above: only the two processes count
    budget = 12
    sandbox.configure(smartsheet={"rpm": budget})  # one request over and the sandbox says 429
    env = server_env(
        SMARTSHEET_RATE_LIMIT_PER_MINUTE=str(budget), SMARTSHEET_RATE_LIMIT_MAX_WAIT="0.5"
    )
    script = CALLS_UNTIL_REFUSED.format(tries=10, sheet_id=sheet_id)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    made = [int(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]

    assert sum(made) == budget  # the limiter admitted exactly the budget, then made them wait
    token = smartsheet_stats(sandbox)["tokens"]["sandbox-token"]
    assert token["rate_limited"] == 0
    assert token["requests"] == budget
    assert token["peak_rpm"] <= budget


def _open_the_breaker(sheet_id: int, failures: int = 3) -> None:
    for _ in range(failures):
        with pytest.raises(client.SmartsheetUnavailable):
            client.sheet_version_get(sheet_id=sheet_id)


@pytest.fixture
def storm(sandbox, settings, breaker_clock):
    """Every request fails with a 4004; three failures open the breaker for 30 s."""
    sheet_id_named(sandbox, "Project Tracker")  # looked up (and cached) while it answers
    settings.SMARTSHEET_BREAKER_FAIL_MAX = 3
    settings.SMARTSHEET_BREAKER_RESET_TIMEOUT = 30
    settings.SMARTSHEET_RETRY_MAX_TRIES = 1
    sandbox.configure(smartsheet={"fail_rate": 1.0, "fail_codes": [4004]})
    return sandbox


def test_the_breaker_opens_on_a_failure_storm_and_recovers(storm, breaker_clock):
    sheet_id = sheet_id_named(storm, "Project Tracker")
    _open_the_breaker(sheet_id)
    sent = smartsheet_stats(storm)["requests"]

    with pytest.raises(
        client.SmartsheetUnavailable, match=r"too many recent failures.*try again in \d+ s"
    ):
        client.sheet_version_get(sheet_id=sheet_id)
    assert smartsheet_stats(storm)["requests"] == sent  # refused without calling

    storm.configure(smartsheet={"fail_rate": 0.0})
    breaker_clock.advance(29)
    with pytest.raises(client.SmartsheetUnavailable, match="too many recent failures"):
        client.sheet_version_get(sheet_id=sheet_id)
    breaker_clock.advance(1)
    assert client.sheet_version_get(sheet_id=sheet_id) >= 1
    assert client.smartsheet_breaker().current_state == "closed"
    assert smartsheet_stats(storm)["requests"] == sent + 1


def test_the_breaker_is_checked_before_waiting_for_a_limiter_slot(storm):
    sheet_id = sheet_id_named(storm, "Project Tracker")
    _open_the_breaker(sheet_id)
    limiter = client.smartsheet_limiter()
    used = limiter.usage()

    for _ in range(5):
        with pytest.raises(client.SmartsheetUnavailable, match="too many recent failures"):
            client.sheet_version_get(sheet_id=sheet_id)
    assert limiter.usage() == used  # refused calls took no share of the budget


def test_a_run_against_a_wrong_base_or_token_leaves_the_apps_breaker_closed(storm, settings):
    sheet_id = sheet_id_named(storm, "Project Tracker")
    app_base, app_token = settings.SMARTSHEET_API_BASE, settings.SMARTSHEET_ACCESS_TOKEN

    settings.SMARTSHEET_API_BASE = "http://127.0.0.1:9/2.0"  # nobody listens on port 9
    with pytest.raises(
        client.SmartsheetUnavailable,
        match=r"could not connect to http://127\.0\.0\.1:9/2\.0 \(connection refused\)",
    ):
        client.sheet_version_get(sheet_id=sheet_id)
    _open_the_breaker(sheet_id, failures=2)
    assert client.smartsheet_breaker().current_state == "open"

    settings.SMARTSHEET_API_BASE = app_base
    settings.SMARTSHEET_ACCESS_TOKEN = "sandbox-token-2"  # another account, failing too
    _open_the_breaker(sheet_id)
    assert client.smartsheet_breaker().current_state == "open"

    settings.SMARTSHEET_ACCESS_TOKEN = app_token
    storm.configure(smartsheet={"fail_rate": 0.0})
    assert client.smartsheet_breaker().current_state == "closed"
    assert client.sheet_version_get(sheet_id=sheet_id) >= 1


def test_when_the_breaker_opens_during_a_calls_own_retries_the_error_names_what_failed(
    storm, settings
):
    sheet_id = sheet_id_named(storm, "Project Tracker")
    settings.SMARTSHEET_API_BASE = "http://127.0.0.1:9/2.0"  # nobody listens on port 9
    settings.SMARTSHEET_RETRY_MAX_TRIES = 5  # more tries than the breaker allows failures
    with pytest.raises(
        client.SmartsheetUnavailable,
        match=r"could not connect to http://127\.0\.0\.1:9/2\.0 \(connection refused\); "
        r"calls are paused.*try again in \d+ s",
    ):
        client.sheet_version_get(sheet_id=sheet_id)
    assert client.smartsheet_breaker().current_state == "open"


def test_a_refused_token_is_a_sentence_that_names_the_setting(sandbox, settings):
    from django.core.management import CommandError, call_command

    settings.SMARTSHEET_ACCESS_TOKEN = "not-a-token"
    with pytest.raises(CommandError) as refused:
        call_command("sync_sheets", "--all")
    message = str(refused.value)
    assert "Your Access Token is invalid (error 1002)" in message
    assert "SMARTSHEET_ACCESS_TOKEN" in message
    assert "{" not in message  # no raw API JSON


def test_transient_failures_are_retried_out_of_sight(sandbox, settings):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    settings.SMARTSHEET_RETRY_MAX_TRIES = 8
    sandbox.configure(smartsheet={"fail_rate": 0.4, "fail_codes": [4001, 4002, 4004]})
    versions = [client.sheet_version_get(sheet_id=sheet_id) for _ in range(8)]
    assert len(set(versions)) == 1
    assert smartsheet_stats(sandbox)["injected_failures"] > 0


def test_a_rate_limited_answer_is_retried_after_a_pause(sandbox, settings, monkeypatch):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    settings.SMARTSHEET_RATE_LIMIT_PAUSE = 0.2
    settings.SMARTSHEET_RETRY_MAX_TRIES = 4
    settings.SMARTSHEET_RETRY_FACTOR = 0.001  # the limiter's pause, not backoff, must do the wait
    # In order: ("paused until", t) for each pause a 429 set, ("admitted", t) for each request
    # the limiter let through; both on Redis's clock, which the shared limiter runs on.
    events: list[tuple[str, float]] = []
    real_pause, real_try_acquire = SlidingWindowLimiter.pause, SlidingWindowLimiter.try_acquire

    def pause(self, seconds):
        paused = real_pause(self, seconds)
        events.append(("paused until", paused[1]))
        return paused

    def try_acquire(self, cost=1):
        reservation, wait = real_try_acquire(self, cost)
        if reservation is not None:
            events.append(("admitted", reservation.admitted_at))
        return reservation, wait

    monkeypatch.setattr(SlidingWindowLimiter, "pause", pause)
    monkeypatch.setattr(SlidingWindowLimiter, "try_acquire", try_acquire)
    sandbox.configure(smartsheet={"fail_rate": 0.5, "fail_codes": [4003]})
    # The id lookup above may have cost a request of its own (it is cached per session).
    before = smartsheet_stats(sandbox)["requests"]
    for _ in range(4):
        client.sheet_version_get(sheet_id=sheet_id)

    stats = smartsheet_stats(sandbox)
    refused = stats["injected_failures"]
    assert refused >= 1, "the seeded sandbox should have refused some requests"
    assert stats["requests"] - before == 4 + refused  # each refusal retried once, all four answered
    # Each 429 paused the shared limiter (every process would wait), and the retry after it
    # was let through only once the pause had ended.
    pauses = [i for i, (kind, _) in enumerate(events) if kind == "paused until"]
    assert len(pauses) == refused
    for i in pauses:
        assert events[i + 1][0] == "admitted" and events[i + 1][1] >= events[i][1]
    assert client.smartsheet_breaker().current_state == "closed"  # 429s are not failures


def test_the_request_timeout_fires_against_a_slow_smartsheet(sandbox, settings):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    settings.SMARTSHEET_TIMEOUT = 0.3
    settings.SMARTSHEET_RETRY_MAX_TRIES = 1
    sandbox.configure(smartsheet={"latency_ms": 1500})
    with pytest.raises(
        client.SmartsheetUnavailable,
        match=r"no answer from http://127\.0\.0\.1:\d+/2\.0 within 0\.3 s",
    ):
        client.sheet_version_get(sheet_id=sheet_id)


def test_bulk_writes_go_500_rows_at_a_time_and_refused_rows_come_back_one_by_one(sandbox):
    sheet_id = sheet_id_named(sandbox, "Customer Feedback")
    owner = other_user_client(sandbox, token="sandbox-token")
    sheet = owner.Sheets.get_sheet(sheet_id, page_size=600)
    primary = next(c for c in sheet.columns if c.primary)
    strict = next(c for c in sheet.columns if str(c.type) in ("DATE", "CHECKBOX"))
    rows = [
        {"id": r.id, "cells": [{"columnId": primary.id, "value": f"bulk {i}"}]}
        for i, r in enumerate(sheet.rows)
    ]
    for bad in (1, 550):
        rows[bad]["cells"] = [{"columnId": strict.id, "value": "not a valid value"}]
    puts_before = smartsheet_stats(sandbox)["routes"].get("PUT /sheets/{id}/rows", 0)

    result = client.rows_update(sheet_id=sheet_id, rows=rows)

    assert smartsheet_stats(sandbox)["routes"]["PUT /sheets/{id}/rows"] - puts_before == 2
    assert [(f.index, f.row_id, f.error_code) for f in result.failures] == [
        (1, sheet.rows[1].id, 1042),
        (550, sheet.rows[550].id, 1042),
    ]
    assert all(f.message for f in result.failures)
    assert len(result.rows) == 598
    after = owner.Sheets.get_sheet(sheet_id, row_ids=[sheet.rows[0].id, sheet.rows[599].id])
    assert [r.get_column(primary.id).value for r in after.rows] == ["bulk 0", "bulk 599"]


def test_our_writes_carry_the_change_agent_and_a_second_writer_waits(sandbox, settings):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    # A first writer that may hold the lock for a minute (its lock does not expire before the
    # second writer has given up, however slowly this machine runs) ...
    settings.SMARTSHEET_WRITE_LOCK_TIMEOUT = 60
    with client.sheet_write_lock(sheet_id=sheet_id):
        # ... and a second writer that waits one second for it.
        settings.SMARTSHEET_WRITE_LOCK_TIMEOUT = 1
        began = time.monotonic()
        with pytest.raises(client.SmartsheetUnavailable, match="another write"):
            client.rows_delete(sheet_id=sheet_id, row_ids=[1])
        assert time.monotonic() - began >= 0.9
    assert client.smartsheet_client()._change_agent == django_settings.SMARTSHEET_CHANGE_AGENT
    assert client.rows_delete(sheet_id=sheet_id, row_ids=[1]) == []


def test_with_redis_down_calls_fail_with_smartsheet_unavailable_and_recover_when_it_returns(
    sandbox, private_redis
):
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    breaker = client.smartsheet_breaker()
    assert client.sheet_version_get(sheet_id=sheet_id) >= 1
    sent = smartsheet_stats(sandbox)["requests"]

    private_redis.stop()
    with pytest.raises(client.SmartsheetUnavailable, match="Redis"):
        client.sheet_version_get(sheet_id=sheet_id)
    with pytest.raises(client.SmartsheetUnavailable, match="Redis"):
        client.rows_delete(sheet_id=sheet_id, row_ids=[1])
    # Fail closed: with the shared budget out of reach, nothing uncounted is sent.
    assert smartsheet_stats(sandbox)["requests"] == sent
    assert client.smartsheet_breaker() is breaker

    private_redis.start()  # empty, as after a restart without persistence
    assert client.sheet_version_get(sheet_id=sheet_id) >= 1
    assert client.rows_delete(sheet_id=sheet_id, row_ids=[1]) == []
    assert client.smartsheet_limiter().usage() == 2  # counted in the new Redis again
    assert not breaker._state_storage.degraded
