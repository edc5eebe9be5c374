"""The scripted fault queue: matching, exact counts under concurrent clients, listing, reset."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import smartsheet

from tests.sandbox.smartsheet_support import client, column_ids, row, sheet_id
from tests.sandbox.test_azure_openai import ask
from tests.sandbox.test_azure_openai import client as azure_client

CLIENTS = 8


def in_parallel(work, per_client: int) -> Counter:
    """Run `work()` per_client times on each of 8 threads started together; count outcomes."""
    start = threading.Barrier(CLIENTS)

    def one_client() -> list[str]:
        start.wait()
        return [work() for _ in range(per_client)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [pool.submit(one_client) for _ in range(CLIENTS)]
        return Counter(outcome for future in results for outcome in future.result())


def test_exactly_the_armed_number_of_smartsheet_requests_fail_under_8_concurrent_clients(sandbox):
    sid = sheet_id(client(sandbox), "Project Tracker")
    # Latency keeps many requests inside the sandbox at once, so they really overlap there.
    sandbox.configure(smartsheet={"latency_ms": 20})
    sandbox.fault("smartsheet", "4004", times=13, route="GET /sheets/{id}/version")
    local = threading.local()

    def read_version() -> str:
        if not hasattr(local, "ss"):
            local.ss = client(sandbox, max_retry_time=0)
        try:
            local.ss.Sheets.get_sheet_version(sid)
        except smartsheet.exceptions.UnexpectedErrorShouldRetryError:
            return "4004"
        return "ok"

    assert in_parallel(read_version, per_client=6) == {"4004": 13, "ok": 8 * 6 - 13}
    assert sandbox.faults()[0]["fired"] == 13 and sandbox.stats()["faults"]["pending"] == 0


def test_exactly_the_armed_number_of_completions_fail_under_8_concurrent_clients(sandbox):
    sandbox.configure(openai={"latency_ms": 20})
    sandbox.fault("openai", 429, times=11, retry_after=0.01)
    local = threading.local()

    def complete() -> str:
        if not hasattr(local, "ai"):
            local.ai = azure_client(sandbox)
        try:
            local.ai.chat.completions.create(model="gpt-4o-mini", messages=ask("hi"))
        except openai.RateLimitError:
            return "429"
        return "ok"

    assert in_parallel(complete, per_client=5) == {"429": 11, "ok": 8 * 5 - 11}
    assert sandbox.stats()["faults"]["fired"] == 11


def test_a_rule_matches_only_its_route_and_sheet(sandbox):
    ss = client(sandbox, max_retry_time=0)
    tracker, tickets = sheet_id(ss, "Project Tracker"), sheet_id(ss, "Support Tickets")
    cols = column_ids(ss, tickets)
    sandbox.fault("smartsheet", "503", route="POST /sheets/{id}/rows", sheet=tickets)
    ss.Sheets.get_sheet_version(tickets)  # another route
    tracker_cols = column_ids(ss, tracker)
    ss.Sheets.add_rows(tracker, [row({next(iter(tracker_cols.values())): "x"})])  # another sheet
    assert sandbox.faults()[0]["remaining"] == 1
    with pytest.raises(smartsheet.exceptions.SystemMaintenanceError):
        ss.Sheets.add_rows(tickets, [row({cols["Ticket"]: "TCK-FAULT"})])
    assert sandbox.faults()[0]["remaining"] == 0
    ss.Sheets.add_rows(tickets, [row({cols["Ticket"]: "TCK-FAULT"})])


def test_a_rule_matches_only_its_deployment(sandbox):
    ai = azure_client(sandbox)
    sandbox.fault("openai", 500, deployment="gpt-4o")
    ai.chat.completions.create(model="gpt-4o-mini", messages=ask("hi"))
    with pytest.raises(openai.InternalServerError):
        ai.chat.completions.create(model="gpt-4o", messages=ask("hi"))
    ai.chat.completions.create(model="gpt-4o", messages=ask("hi"))


def test_a_rule_for_one_service_leaves_the_other_alone(sandbox):
    sandbox.fault("openai", 503)
    client(sandbox).Users.get_current_user()
    assert sandbox.faults()[0]["remaining"] == 1


def test_rules_are_listed_in_arming_order_and_delete_disarms_them(sandbox):
    sid = sheet_id(client(sandbox), "Project Tracker")
    first = sandbox.fault("smartsheet", "429", times=2, route="get /sheets/{sheetId}/version")
    second = sandbox.fault("openai", "timeout", deployment="gpt-4o", seconds=5)
    assert first["route"] == "get /sheets/{sheetId}/version"  # any placeholder name, any case
    with pytest.raises(smartsheet.exceptions.RateLimitExceededError):
        client(sandbox, max_retry_time=0).Sheets.get_sheet_version(sid)
    listed = sandbox.faults()
    assert [r["id"] for r in listed] == [first["id"], second["id"]]
    assert listed[0] | {"fired": 1, "remaining": 1} == listed[0]
    assert listed[1]["fault"] == {"kind": "timeout", "seconds": 5.0}
    assert sandbox.clear_faults() == 2
    assert sandbox.faults() == []
    assert client(sandbox).Sheets.get_sheet_version(sid).version == 1
    assert sandbox.stats()["faults"] == {
        "armed": 3,
        "fired": 1,
        "pending": 0,
        "fired_by_kind": {"429": 1},
    }


def test_reset_disarms_every_rule_and_zeroes_the_counts(sandbox):
    sid = sheet_id(client(sandbox), "Project Tracker")
    sandbox.fault("smartsheet", "4004", times=3)
    sandbox.fault("openai", 429)
    sandbox.reset()
    assert sandbox.faults() == []
    assert sandbox.stats()["faults"] == {"armed": 0, "fired": 0, "pending": 0, "fired_by_kind": {}}
    assert client(sandbox, max_retry_time=0).Sheets.get_sheet_version(sid).version == 1
    assert azure_client(sandbox).chat.completions.create(model="gpt-4o", messages=ask("hi"))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"service": "excel", "fault": {"kind": "500"}}, "one of openai, smartsheet"),
        ({"service": "smartsheet", "fault": {"kind": "418"}}, "use one of 429, 4004, 500"),
        ({"service": "smartsheet", "fault": {"kind": "content_filter"}}, "cannot fail with"),
        ({"service": "openai", "fault": {"kind": "4004"}}, "cannot fail with kind '4004'"),
        ({"service": "smartsheet", "route": "GET /nope", "fault": {"kind": "500"}}, "/users/me"),
        ({"service": "smartsheet", "times": 0, "fault": {"kind": "500"}}, "at least 1"),
        ({"service": "smartsheet", "deployment": "gpt-4o", "fault": {"kind": "500"}}, "match on"),
        ({"service": "openai", "deployment": "gpt-5", "fault": {"kind": "500"}}, "gpt-4o-mini"),
        ({"service": "openai", "fault": {"kind": "500", "seconds": 1}}, "no parameters"),
        ({"service": "openai", "fault": {"kind": "timeout", "seconds": -1}}, "at least 0"),
        ({"service": "smartsheet", "fault": {"kind": "429", "retry_after": 2}}, "no Retry-After"),
        ({"service": "openai", "fault": {"kind": "content_filter", "on": "x"}}, '"completion"'),
        ({"service": "openai", "fault": "429"}, "an object with a kind"),
        ({"service": "openai", "fault": {"kind": "429"}, "when": "now"}, "Unknown fault keys"),
    ],
)
def test_a_wrong_spec_is_refused_with_what_to_send_instead(sandbox, spec, says):
    response = httpx.post(f"{sandbox.url}/_sandbox/faults", json=spec)
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert sandbox.faults() == []
