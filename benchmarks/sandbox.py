"""Sandbox speed: the 20,000-row sheet through the SDK, small requests per second, reset time.

    .venv/bin/python benchmarks/sandbox.py

Starts its own sandbox on a free port. Goals (issue 3): the 20,000-row sheet in under 3 s,
small requests at >= 200/s. Each figure is printed beside its goal as a ratio (< 1 is better for
times, > 1 for rates); the baseline for the big fetch is the same bytes over the same loopback
connection from the sandbox's own cache (second fetch), so the ratio shows the cost of building it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx
import smartsheet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._sandbox import sandbox_running  # noqa: E402

TOKEN = {"Authorization": "Bearer sandbox-token"}


def _timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(url: str) -> None:
    ss = smartsheet.Smartsheet(access_token="sandbox-token", api_base=f"{url}/2.0")
    ss.errors_as_exceptions(True)
    sheets = ss.Passthrough.get("/sheets").data["data"]
    big = next(s["id"] for s in sheets if s["name"] == "Support Tickets")
    small = next(s["id"] for s in sheets if s["name"] == "Project Tracker")

    def change_big_sheet() -> None:  # invalidates the sandbox's rendering of the sheet
        sheet = ss.Passthrough.get(f"/sheets/{big}", query_params={"pageSize": 1}).data
        row, column = sheet["rows"][0]["id"], sheet["columns"][1]["id"]
        stamp = str(time.perf_counter_ns())
        update = smartsheet.models.Row({"id": row, "cells": [{"columnId": column, "value": stamp}]})
        ss.Sheets.update_rows(big, [update])

    def fetch_after_change() -> None:
        change_big_sheet()
        started = time.perf_counter()
        sheet = ss.Passthrough.get(f"/sheets/{big}").data
        fetch_after_change.times.append(time.perf_counter() - started)
        assert len(sheet["rows"]) == 20000

    fetch_after_change.times = []
    for _ in range(3):
        fetch_after_change()
    built = statistics.median(fetch_after_change.times)
    cached = _timed(lambda: ss.Passthrough.get(f"/sheets/{big}"))
    print(
        f"20,000 x 20 sheet via the SDK, after a change: {built:.2f} s "
        f"(goal 3 s: {built / 3:.2f}x of the budget; {built / cached:.1f}x a cached fetch "
        f"of {cached:.2f} s)"
    )

    with httpx.Client() as http:
        # The rate limit (300/min per token) is not what this measures.
        http.post(f"{url}/_sandbox/config", json={"smartsheet": {"rpm": 1_000_000}})
        count = 500

        def small_requests_per_s() -> float:
            started = time.perf_counter()
            for _ in range(count):
                http.get(f"{url}/2.0/sheets/{small}/version", headers=TOKEN).raise_for_status()
            return count / (time.perf_counter() - started)

        rate = small_requests_per_s()
        print(
            f"small requests, one keep-alive client: {rate:.0f}/s (goal 200/s: {rate / 200:.1f}x)"
        )
        # Scripted faults armed for other requests: every request now walks the rules.
        for n in range(20):
            http.post(
                f"{url}/_sandbox/faults",
                json={"service": "smartsheet", "sheet": n, "times": 1000, "fault": {"kind": "500"}},
            ).raise_for_status()
        armed = small_requests_per_s()
        http.delete(f"{url}/_sandbox/faults").raise_for_status()
        print(
            f"small requests with 20 non-matching fault rules armed: {armed:.0f}/s "
            f"({armed / rate:.2f}x the rate with none)"
        )

        reset = _timed(lambda: http.post(f"{url}/_sandbox/reset").raise_for_status(), repeat=5)
        dirty = _timed(
            lambda: (change_big_sheet(), http.post(f"{url}/_sandbox/reset").raise_for_status()),
            repeat=3,
        )
        print(
            f"reset: {reset * 1000:.0f} ms untouched, {dirty * 1000:.0f} ms incl. a change "
            "to the big sheet"
        )


def main() -> None:
    with sandbox_running() as url:
        run(url)


if __name__ == "__main__":
    main()
