"""Chat benchmarks. Prints p50/p95 and ratios against baselines measured in the same run.

    .venv/bin/python benchmarks/chat.py

1. Send → first streamed token visible in the page (real Chromium, daphne, a Celery worker, the
   sandbox model at 0 ms latency), against the sandbox's own time to a first streamed chunk from
   Python. Goal: p95 < 300 ms.
2. The `aggregate` tool over the 20,000-row sheet (count by a dropdown, average of a number
   column, over every row in the database), against a plain COUNT(*) of the sheet's rows.
   Goal: p95 < 200 ms.

Starts its own sandbox, daphne and worker on free ports. Uses DATABASE_URL when set (an existing
PostgreSQL database it may fill), else a throwaway SQLite file in var/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._sandbox import benchmark_run, free_port  # noqa: E402

BIG_SHEET = "Support Tickets"
SENDS = 20
AGGREGATES = 30
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def show(label: str, values: list[float], goal: float | None = None) -> None:
    line = f"{label:<52} p50 {p(values, 0.5):7.1f} ms   p95 {p(values, 0.95):7.1f} ms"
    if goal is not None:
        line += f"   goal < {goal:.0f} ms: {'met' if p(values, 0.95) < goal else 'MISSED'}"
    print(line)


def main() -> None:
    benchmark_run("chat", run)


def _servers(web_port: int) -> list[subprocess.Popen]:
    log = open(ROOT / "var" / "benchmark-chat-servers.log", "w")  # noqa: SIM115
    common = {"cwd": ROOT, "stdout": log, "stderr": subprocess.STDOUT, "env": dict(os.environ)}
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(web_port),
            "config.asgi:application",
        ],
        **common,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "interactive",
         "-P", "threads", "-c", "4", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        **common,
    )  # fmt: skip
    return [web, worker]


def run(base: str) -> None:
    import logging

    import django

    logging.disable(logging.INFO)  # the clients' per-request lines would bury the figures

    django.setup()
    import httpx
    import openai
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from chat import services
    from sheets import sync

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    user.set_password("bench")
    user.save()

    # --- 1. send -> first token visible -----------------------------------------------------
    direct = openai.AzureOpenAI(
        azure_endpoint=base, api_key="sandbox-key", api_version="2024-10-21", max_retries=0
    )
    baseline = []
    for _ in range(SENDS):
        began = time.perf_counter()
        stream = direct.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello to the team"}],
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        baseline.append((time.perf_counter() - began) * 1000)
        stream.close()

    web_port = free_port()
    servers = _servers(web_port)
    web = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{web}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("daphne did not start; see var/benchmark-chat-servers.log")
            time.sleep(0.2)
        visible, mine = _first_token_in_page(web, user, services)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)

    print(f"Chat benchmarks ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})")
    show("sandbox stream, first chunk (Python, baseline)", baseline)
    show("send -> my message shown in the page", mine)
    show("send -> first streamed token visible in the page", visible, goal=300)
    print(f"{'':<52} ratio p95 page/baseline {p(visible, 0.95) / p(baseline, 0.95):.1f}x")

    # --- 2. aggregate over the 20,000-row sheet ---------------------------------------------
    import smartsheet

    from chat.tools import ToolContext, tool_run
    from sheets.models import Column, Row

    owner = smartsheet.Smartsheet(access_token="sandbox-token", api_base=f"{base}/2.0")
    owner.errors_as_exceptions(True)
    sheet_id = next(int(s.id) for s in owner.Sheets.list_sheets().data if s.name == BIG_SHEET)
    if Row.objects.filter(sheet_id=sheet_id).count() < 20_000:
        sync.sheets_discover(sheet_ids=[sheet_id])
        sync.sheet_sync(sheet_id=sheet_id, full=True)
    columns = list(Column.objects.filter(sheet_id=sheet_id))
    picklist = next(c for c in columns if c.type == "PICKLIST")
    number = next((c for c in columns if c.type == "TEXT_NUMBER" and _numeric(c, sheet_id)), None)
    context = ToolContext(user=user)
    count_all, grouped, averaged = [], [], []
    for _ in range(AGGREGATES):
        began = time.perf_counter()
        Row.objects.filter(sheet_id=sheet_id).count()
        count_all.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        tool_run(
            name="aggregate",
            arguments={
                "sheet_id": sheet_id, "operation": "count", "column": None,
                "group_by": picklist.title, "filters": None,
            },
            context=context,
        )  # fmt: skip
        grouped.append((time.perf_counter() - began) * 1000)
        if number is not None:
            began = time.perf_counter()
            tool_run(
                name="aggregate",
                arguments={
                    "sheet_id": sheet_id, "operation": "avg", "column": number.title,
                    "group_by": None, "filters": [
                        {"column": picklist.title, "op": "=", "value": str(picklist.options[0])}
                    ],
                },
                context=context,
            )  # fmt: skip
            averaged.append((time.perf_counter() - began) * 1000)
    rows = Row.objects.filter(sheet_id=sheet_id).count()
    show(f"COUNT(*) of {rows:,} rows (baseline)", count_all)
    show(f"aggregate: count by {picklist.title}", grouped, goal=200)
    print(f"{'':<52} ratio p95 tool/baseline {p(grouped, 0.95) / p(count_all, 0.95):.1f}x")
    if averaged:
        show(f"aggregate: avg {number.title} where {picklist.title} = …", averaged, goal=200)


def _numeric(column, sheet_id: int) -> bool:
    from sheets.models import Row

    sample = Row.objects.filter(sheet_id=sheet_id)[:20]
    values = [r.value(column.pk) for r in sample]
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _first_token_in_page(web: str, user, services) -> tuple[list[float], list[float]]:
    from django.conf import settings
    from django.test import Client
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    session = services.session_create(owner=user, title="benchmark")
    timings, mine = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(base_url=web)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": web}])
        page = context.new_page()
        page.goto(f"/chat/{session.pk}/")
        page.wait_for_selector("#chat[data-live='1']")
        for n in range(SENDS + 2):
            count = page.locator("[data-role='assistant']").count()
            page.fill("[data-testid='composer-input']", f"Say hello to the team, take {n}")
            page.evaluate(
                """(count) => {
                    window.__sent = performance.now();
                    window.__seen = null;
                    window.__shown = null;
                    const mine = document.querySelectorAll("[data-role='user']").length;
                    const observer = new MutationObserver(() => {
                        if (window.__shown === null &&
                            document.querySelectorAll("[data-role='user']").length > mine) {
                            window.__shown = performance.now();
                        }
                        const replies = document.querySelectorAll(
                            "[data-role='assistant'] .msg-body");
                        const reply = replies[count];
                        if (reply && reply.textContent.trim() && window.__seen === null) {
                            window.__seen = performance.now();
                            observer.disconnect();
                        }
                    });
                    observer.observe(document.getElementById("messages"),
                                     {childList: true, subtree: true, characterData: true});
                    document.getElementById("composer").requestSubmit();
                }""",
                count,
            )
            page.wait_for_function("window.__seen !== null", timeout=20_000)
            elapsed = page.evaluate("window.__seen - window.__sent")
            shown = page.evaluate("(window.__shown || window.__seen) - window.__sent")
            page.wait_for_selector(
                f"[data-role='assistant'] >> nth={count}", state="attached", timeout=20_000
            )
            done = "[data-role='assistant'][data-status='complete']"
            page.wait_for_function(
                f'(count) => document.querySelectorAll("{done}").length > count',
                arg=count,
                timeout=20_000,
            )
            if n >= 2:  # the first sends warm the worker and the page up
                timings.append(elapsed)
                mine.append(shown)
        browser.close()
    return timings, mine


if __name__ == "__main__":
    main()
