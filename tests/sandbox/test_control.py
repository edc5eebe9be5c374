"""The control endpoints, the per-token rate limit with the SDK's own retry, injected faults."""

from __future__ import annotations

import httpx
import smartsheet

from tests.sandbox.smartsheet_support import (
    OTHER_TOKEN,
    api_error,
    client,
    column_ids,
    row,
    sheet_id,
)


def test_it_deep_merges_config_and_rejects_bad_values(sandbox):
    merged = sandbox.configure(smartsheet={"rpm": 60})
    assert merged["smartsheet"]["rpm"] == 60 and merged["smartsheet"]["fail_codes"] == [4004]
    assert merged["openai"]["rpm"] == 600
    for bad in ({"fail_codes": [500]}, {"fail_rate": 2}, {"rpm": "many"}, {"nope": 1}):
        response = httpx.post(f"{sandbox.url}/_sandbox/config", json={"smartsheet": bad})
        assert response.status_code == 400 and response.json()["error"]
    assert sandbox.config()["smartsheet"]["rpm"] == 60


def test_it_resets_data_config_and_stats_quickly(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Support Tickets")
    cols = column_ids(ss, sid)
    ss.Sheets.add_rows(sid, [row({cols["Ticket"]: "TCK-NEW"})])
    sandbox.configure(smartsheet={"rpm": 10})
    sandbox.reset()
    # Only the sheet that changed is copied again (benchmarks/sandbox.py times it).
    assert sandbox.stats()["services"]["smartsheet"]["counters"]["sheets_recopied"] == 1
    sandbox.reset()
    assert sandbox.stats()["services"]["smartsheet"]["counters"]["sheets_recopied"] == 0
    assert ss.Sheets.get_sheet_version(sid).version == 1
    assert ss.Sheets.get_sheet(sid, page_size=1).total_row_count == 20000
    assert sandbox.config()["smartsheet"]["rpm"] == 300
    assert sandbox.stats()["services"]["smartsheet"]["requests"] == 2


def test_it_counts_requests_per_route_and_token(sandbox):
    ss = client(sandbox)
    ss.Users.get_current_user()
    client(sandbox, OTHER_TOKEN).Users.get_current_user()
    stats = sandbox.stats()["services"]["smartsheet"]
    assert stats["requests"] == 2 and stats["routes"]["GET /users/me"] == 2
    assert stats["tokens"]["sandbox-token"]["requests"] == 1
    assert stats["tokens"]["sandbox-token-2"]["peak_rpm"] == 1


def test_it_rate_limits_per_token_and_the_sdk_retries(sandbox):
    sandbox.configure(smartsheet={"rpm": 2})
    calls = []

    class LiftLimit(smartsheet.smartsheet.AbstractUserCalcBackoff):
        # Stands in for the minute passing: the budget refills, so the retry can succeed.
        def calc_backoff(self, previous_attempts, total_elapsed_time, error_result):
            calls.append(error_result.error_code)
            sandbox.configure(smartsheet={"rpm": 300})
            return 0.01

    ss = client(sandbox, max_retry_time=LiftLimit())
    ss.Users.get_current_user()
    ss.Users.get_current_user()
    assert client(sandbox, OTHER_TOKEN).Users.get_current_user().email == "pat@example.com"
    assert ss.Users.get_current_user().email == "sandbox@example.com"
    assert calls == [4003]
    stats = sandbox.stats()["services"]["smartsheet"]
    assert stats["rate_limited"] == 1 and stats["tokens"]["sandbox-token"]["rate_limited"] == 1

    sandbox.configure(smartsheet={"rpm": 1})
    raw = httpx.get(
        f"{sandbox.smartsheet_base}/users/me", headers={"Authorization": "Bearer sandbox-token"}
    )
    assert raw.status_code == 429
    assert raw.json()["errorCode"] == 4003 and raw.json()["message"] == "Rate limit exceeded."
    error = api_error(lambda: client(sandbox, max_retry_time=0).Users.get_current_user())
    assert (error.status_code, error.code) == (429, 4003)


def test_it_injects_the_configured_failures_deterministically(sandbox):
    def run() -> list[int]:
        sandbox.reset()
        sandbox.configure(smartsheet={"fail_rate": 0.5, "fail_codes": [4001, 4002]})
        codes = []
        for _ in range(12):
            response = httpx.get(
                f"{sandbox.smartsheet_base}/users/me",
                headers={"Authorization": "Bearer sandbox-token"},
            )
            codes.append(response.json().get("errorCode", 0))
            if response.status_code == 503:
                assert response.json()["errorCode"] == 4001
        return codes

    first = run()
    assert first == run()
    assert {4001, 4002} <= set(first) and 0 in first
    assert sandbox.stats()["services"]["smartsheet"]["injected_failures"] == 12 - first.count(0)
