"""AI job benchmark: 5,000 rows of Support Tickets classified into Priority, against the quota's
bound and against a naive row-by-row script (the SDKs directly: one model call and one
`update_rows` per row). Prints ratios from one run.

    .venv/bin/python benchmarks/jobs.py [--rows 5000] [--naive-rows 200]

Starts its own sandbox on a free port: its model answers after 100 ms, with a 6,000 RPM quota
(the bound: 100 rows/s), and Smartsheet allows its real 300 requests per minute. Uses DATABASE_URL
when set, else a throwaway SQLite file in var/. The job runs in this process as a worker runs it
(jobs.runner.job_run), so the peak RSS printed is the worker's.
Goals: ≥ 90 % of the quota's bound, ≥ 10x the naive script, ≤ 3 Smartsheet calls per 1,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._sandbox import benchmark_run  # noqa: E402

SHEET = "Support Tickets"
TEMPLATE = "Classify the priority of this support ticket: {{Subject}}. {{Description}}"
TARGET = "Priority"
RPM = 6000
LATENCY_MS = 100


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--naive-rows", type=int, default=200)
    options = parser.parse_args()
    deployments = {
        "gpt-4o-mini": {
            "model": "gpt-4o-mini",
            "rpm": RPM,
            "tpm": 100_000_000,
            "input_per_1k": "0.00015",
            "output_per_1k": "0.0006",
        }
    }
    os.environ.setdefault("JOBS_MAX_IN_FLIGHT", "32")
    benchmark_run(
        "jobs",
        lambda url: run(url, options.rows, options.naive_rows),
        AZURE_OPENAI_DEPLOYMENTS=json.dumps(deployments),
    )


def _requests(url: str) -> int:
    import httpx

    stats = httpx.get(f"{url}/_sandbox/stats", timeout=10).json()["services"]
    return stats.get("smartsheet", {}).get("requests", 0)


def run(url: str, rows: int, naive_rows: int) -> None:
    import django

    django.setup()
    import httpx
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from jobs.runner import job_run
    from jobs.services import JobSpec, job_create
    from sheets.models import Column, Row, Sheet

    httpx.post(
        f"{url}/_sandbox/config",
        json={"openai": {"rpm": RPM, "tpm": 100_000_000, "latency_ms": LATENCY_MS}},
        timeout=10,
    ).raise_for_status()
    call_command("migrate", verbosity=0)
    # The 20,000-row mirror is built by another process, so this one's peak RSS is the job's.
    subprocess.run(
        [sys.executable, "manage.py", "sync_sheets", "--all"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sheet = Sheet.objects.get(name=SHEET)
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    target = Column.objects.get(sheet=sheet, title=TARGET)
    ids = tuple(sheet.rows.order_by("row_number").values_list("pk", flat=True)[:rows])
    spec = JobSpec(
        sheet_id=sheet.pk,
        template=TEMPLATE,
        target_column_id=target.pk,
        selection="rows",
        row_ids=ids,
    )
    job = job_create(user=user, spec=spec)
    calls_before = _requests(url)
    cpu_before = _cpu_seconds()
    began = time.monotonic()
    status = job_run(job_id=job.pk, sliced=False)
    seconds = time.monotonic() - began
    cpu = _cpu_seconds() - cpu_before
    calls = _requests(url) - calls_before
    job.refresh_from_db()
    rate = job.rows_done / seconds
    bound = RPM / 60
    print(f"job: {job.rows_done:,} rows written in {seconds:.1f} s ({status})")
    print(f"  rows/s {rate:.1f} against the quota's bound of {bound:.0f}: {rate / bound:.0%}")
    print(f"  Smartsheet calls: {calls} in all, {calls / (rows / 1000):.2f} per 1,000 rows")
    print(f"  peak RSS of the worker: {_rss_mb():.0f} MB")
    # On a shared 2-core machine the CPU a row costs tells more than the wall clock: at 100
    # rows/s the worker needs 100 x this many ms of CPU per second, beside the sandbox's own.
    print(f"  worker CPU per row: {cpu / max(1, job.rows_done) * 1000:.1f} ms; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip

    naive_rate, naive_calls = _naive(url, sheet.pk, target.pk, naive_rows, Row, Column)
    print(
        f"naive script: {naive_rate:.1f} rows/s, {naive_calls:.0f} Smartsheet calls per 1,000 rows"
    )
    print(f"  the job is {rate / naive_rate:.1f}x faster (goal >= 10x)")


def _naive(url: str, sheet_id: int, target_id: int, count: int, Row, Column):
    """One model call and one update_rows per row, straight through the SDKs."""
    import openai
    import smartsheet
    from django.conf import settings

    ss = smartsheet.Smartsheet(access_token="sandbox-token", api_base=f"{url}/2.0")
    ss.errors_as_exceptions(True)
    ai = openai.AzureOpenAI(
        azure_endpoint=url, api_key="sandbox-key", api_version=settings.AZURE_OPENAI_API_VERSION
    )
    subject = Column.objects.get(sheet_id=sheet_id, title="Subject").pk
    description = Column.objects.get(sheet_id=sheet_id, title="Description").pk
    rows = list(Row.objects.filter(sheet_id=sheet_id).order_by("-row_number")[:count])
    calls_before = _requests(url)
    began = time.monotonic()
    for row in rows:
        prompt = TEMPLATE.replace("{{Subject}}", row.display(subject)).replace(
            "{{Description}}", row.display(description)
        )
        reply = ai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt + " Answer Low, Medium, High or Urgent."}],
            max_tokens=10,
        )
        answer = (reply.choices[0].message.content or "").strip().rstrip(".")
        if answer not in ("Low", "Medium", "High", "Urgent"):
            answer = "Medium"
        ss.Sheets.update_rows(
            sheet_id,
            [
                smartsheet.models.Row(
                    {"id": row.pk, "cells": [{"columnId": target_id, "value": answer}]}
                )
            ],
        )
    seconds = time.monotonic() - began
    calls = _requests(url) - calls_before
    return count / seconds, calls / (count / 1000)


if __name__ == "__main__":
    main()
