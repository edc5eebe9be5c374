"""An AI job driven from a real Chromium: form, preview, start, live progress on a real Celery
worker, undo."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from core.processes import process_stop
from jobs.models import Job, JobRow
from jobs.services import JobSpec, job_plan
from sheets import sync
from sheets.models import Sheet, SheetGrant
from tests.conftest import ROOT, run_in_thread, server_env, wait_until
from tests.jobs.conftest import (  # noqa: F401 (fixtures)
    FEEDBACK,
    _fast_client,
    _jobs_settings,
    remote_values,
    sheet_id_named,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# One row answered at a time, half a second each: a page loaded right after Start sees the job
# mid-run, and every later figure can only have come over the socket.
WORKER_SETTINGS = {
    "JOBS_FLUSH_SECONDS": "0.3",
    "JOBS_HEARTBEAT_SECONDS": "0.2",
    "JOBS_MAX_IN_FLIGHT": "1",
}
MODEL_LATENCY_MS = 500
FILTER = "Received = 2024-10-05"
PROMPT = "Classify the sentiment of this customer feedback: "


@pytest.fixture
def jobs_worker(django_db_blocker) -> Iterator[subprocess.Popen]:
    """A Celery worker on the bulk queue with short flush and heartbeat intervals."""
    from config.celery import app

    log = open(ROOT / "var" / "test-jobs-browser-worker.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "bulk", "-P", "threads",
         "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", "jobs-browser@%h", "-l", "INFO"],
        cwd=ROOT, env=server_env(**WORKER_SETTINGS), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited early; see {log.name}")
        return bool(app.control.ping(destination=[f"jobs-browser@{_host()}"], timeout=0.5))

    others: list[str] = []
    try:
        wait_until(ready, timeout=30, what="the jobs worker to answer a ping")
        # The session's worker (tests/conftest.py), if this process started one, would take the
        # job at its own pace: it stops taking bulk tasks while this test runs.
        me = f"jobs-browser@{_host()}"
        others = [n for reply in app.control.ping(timeout=0.5) for n in reply if n != me]
        if others:
            app.control.cancel_consumer("bulk", destination=others, reply=True)
        yield proc
    finally:
        if others:
            app.control.add_consumer("bulk", destination=others, reply=True)
        process_stop(proc)
        log.close()


@pytest.fixture
def feedback(sandbox, transactional_db) -> Sheet:
    """Customer Feedback mirrored; in a thread, since Playwright's event loop runs in this one
    (and a sync announces the sheet through async_to_sync)."""

    def mirror() -> int:
        sheet_id = sheet_id_named(sandbox, FEEDBACK)
        sync.sheets_discover(sheet_ids=[sheet_id])
        sync.sheet_sync(sheet_id=sheet_id)
        return sheet_id

    return Sheet.objects.get(pk=run_in_thread(mirror))


@pytest.fixture
def editor(alice, feedback):
    SheetGrant.objects.create(sheet=feedback, user=alice, role="edit")
    return alice


def _host() -> str:
    import socket

    return socket.gethostname()


def test_a_job_is_previewed_started_watched_to_100_percent_live_and_undone(
    page,
    login,
    editor,
    feedback,
    sandbox,
    jobs_worker,
):
    sandbox.configure(openai={"latency_ms": MODEL_LATENCY_MS})
    chosen = job_plan(
        user=editor,
        spec=JobSpec(
            sheet_id=feedback.pk,
            template=PROMPT + "{{Feedback}}",
            target_column_id=feedback.columns.get(title="Sentiment").pk,
            selection="filter",
            filter_text=FILTER,
        ),
    ).rows
    row_ids = list(chosen.values_list("pk", flat=True))
    assert 6 <= len(row_ids) <= 40, "pick a filter that selects a handful of rows"

    login(editor).goto("/sheets/")
    page.locator(f'tr[data-sheet-id="{feedback.pk}"]').get_by_test_id("run-ai").click()
    expect(page).to_have_url(f"/jobs/new?sheet={feedback.pk}")

    prompt = page.get_by_label("What to ask for each row")
    prompt.fill(PROMPT)
    page.get_by_test_id("column-chips").get_by_role("button", name="Feedback").click()
    expect(prompt).to_have_value(PROMPT + "{{Feedback}}")
    page.get_by_label("Fill column").select_option(label="Sentiment (dropdown)")
    expect(page.get_by_label("Filter", exact=True)).to_be_hidden()
    page.get_by_label("Rows matching a filter").check()
    page.get_by_label("Filter", exact=True).fill(FILTER)

    page.get_by_test_id("preview").click()
    expect(page.get_by_test_id("preview-row")).to_have_count(3)
    for answer in page.locator(".preview-answer").all_text_contents():
        assert answer in ("Positive", "Neutral", "Negative")
    expect(page.get_by_test_id("estimate-rows")).to_have_text(str(len(row_ids)))
    assert not Job.objects.exists()  # a preview writes nothing
    page.screenshot(path="/tmp/jobs-new.png", full_page=True)

    page.get_by_test_id("start").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get()
    stats = page.get_by_test_id("job-stats")
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    at_load = int(stats.get_attribute("data-percent"))
    assert at_load < 100, "the job finished before the page loaded; slow the model down"
    page.evaluate("window.sameDocument = true")
    page.screenshot(path="/tmp/jobs-detail-running.png", full_page=True)

    expect(stats).to_have_attribute("data-percent", "100", timeout=60_000)
    expect(stats).to_have_attribute("data-status", "completed")
    assert page.evaluate("window.sameDocument") is True  # pushed, never reloaded
    expect(page.get_by_test_id("job-done")).to_contain_text(f"{len(row_ids)} of {len(row_ids)}")
    # The rows table refreshed itself as rows finished.
    expect(page.locator('[data-testid=job-row][data-status="done"]')).to_have_count(len(row_ids))
    written = remote_values(sandbox, feedback, "Sentiment", row_ids)
    assert set(written.values()) <= {"Positive", "Neutral", "Negative"}
    assert None not in written.values()
    page.screenshot(path="/tmp/jobs-detail.png", full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("action-undo").click()
    expect(page.get_by_test_id("job-outcome")).to_contain_text(f"{len(row_ids)} cell(s) restored.")
    expect(page.get_by_test_id("undone")).to_be_visible()
    expect(page.get_by_test_id("action-undo")).to_have_count(0)
    assert set(remote_values(sandbox, feedback, "Sentiment", row_ids).values()) == {None}
    assert JobRow.objects.filter(job=job, status="done").count() == len(row_ids)
    page.goto("/jobs/")
    expect(page.get_by_test_id(f"job-{job.pk}")).to_contain_text("completed")
    page.screenshot(path="/tmp/jobs-index.png", full_page=True)
