"""Scripted faults on the Smartsheet side, as the smartsheet SDK sees each kind."""

from __future__ import annotations

import time

import httpx
import pytest
import smartsheet

from tests.sandbox.smartsheet_support import client, column_ids, row, sheet_id

VERSION_ROUTE = "GET /sheets/{id}/version"


class QuickRetries(smartsheet.smartsheet.AbstractUserCalcBackoff):
    """The SDK's retry loop with a 10 ms wait; records each error code it was asked about."""

    def __init__(self) -> None:
        self.codes: list[int] = []

    def calc_backoff(self, previous_attempts, total_elapsed_time, error_result):
        self.codes.append(error_result.error_code)
        return 0.01


@pytest.mark.parametrize(
    ("kind", "status", "code", "error_class"),
    [
        ("429", 429, 4003, "RateLimitExceededError"),
        ("4004", 500, 4004, "UnexpectedErrorShouldRetryError"),
        ("500", 500, 4002, "ServerTimeoutExceededError"),
        ("503", 503, 4001, "SystemMaintenanceError"),
    ],
)
def test_each_error_kind_reaches_the_sdk_as_smartsheet_sends_it(
    sandbox, kind, status, code, error_class
):
    ss = client(sandbox, max_retry_time=0)
    sid = sheet_id(ss, "Project Tracker")
    sandbox.fault("smartsheet", kind)
    with pytest.raises(getattr(smartsheet.exceptions, error_class)):
        ss.Sheets.get_sheet_version(sid)
    assert ss.Sheets.get_sheet_version(sid).version == 1

    sandbox.fault("smartsheet", kind)
    raw = httpx.get(
        f"{sandbox.smartsheet_base}/sheets/{sid}/version",
        headers={"Authorization": "Bearer sandbox-token"},
    )
    assert raw.status_code == status and raw.json()["errorCode"] == code
    assert raw.json()["refId"] and raw.json()["message"]
    assert "retry-after" not in raw.headers  # Smartsheet sends none, even with a 429


def test_the_sdk_retries_the_armed_failures_and_then_succeeds(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    retries = QuickRetries()
    sandbox.fault("smartsheet", "4004", times=2, route=VERSION_ROUTE)
    sandbox.fault("smartsheet", "429", route=VERSION_ROUTE)
    retrying = client(sandbox, max_retry_time=retries)
    assert retrying.Sheets.get_sheet_version(sid).version == 1
    assert retries.codes == [4004, 4004, 4003]  # in the order they were armed
    stats = sandbox.stats()
    assert stats["faults"] == {
        "armed": 3,
        "fired": 3,
        "pending": 0,
        "fired_by_kind": {"4004": 2, "429": 1},
    }
    assert stats["services"]["smartsheet"]["injected_failures"] == 3


def test_a_held_request_is_dropped_after_its_time_and_the_sdk_sees_a_connection_error(sandbox):
    ss = client(sandbox, max_retry_time=0)
    sid = sheet_id(ss, "Project Tracker")
    sandbox.fault("smartsheet", "timeout", seconds=0.3)
    started = time.monotonic()
    with pytest.raises(smartsheet.exceptions.UnexpectedRequestError):
        ss.Sheets.get_sheet_version(sid)
    assert time.monotonic() - started >= 0.3  # held at least as long as asked, then dropped
    assert ss.Sheets.get_sheet_version(sid).version == 1


def test_a_client_that_times_out_first_gives_up_and_the_next_request_is_served(sandbox):
    sid = sheet_id(client(sandbox), "Project Tracker")
    sandbox.fault("smartsheet", "timeout", seconds=60)
    url = f"{sandbox.smartsheet_base}/sheets/{sid}/version"
    headers = {"Authorization": "Bearer sandbox-token"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, headers=headers, timeout=0.3)
    assert httpx.get(url, headers=headers, timeout=5).json() == {"version": 1}


def test_a_response_cut_mid_way_fails_in_the_sdk_and_changes_nothing_more(sandbox):
    ss = client(sandbox, max_retry_time=0)
    sid = sheet_id(ss, "Project Tracker")
    sandbox.fault("smartsheet", "stream_cut", route="GET /sheets/{id}")
    with pytest.raises(smartsheet.exceptions.UnexpectedRequestError):
        ss.Sheets.get_sheet(sid)
    assert len(ss.Sheets.get_sheet(sid).rows) == 200


def test_a_cut_write_was_applied_though_the_client_never_saw_the_answer(sandbox):
    ss = client(sandbox, max_retry_time=0)
    sid = sheet_id(ss, "Project Tracker")
    cols = column_ids(ss, sid)
    title = next(iter(cols))
    sandbox.fault("smartsheet", "stream_cut", route="POST /sheets/{id}/rows", sheet=sid)
    with pytest.raises(smartsheet.exceptions.UnexpectedRequestError):
        ss.Sheets.add_rows(sid, [row({cols[title]: "written before the cut"})])
    # As on a real network: the write happened, only its answer was lost.
    assert ss.Sheets.get_sheet_version(sid).version == 2
