"""A running AI job seen from an open grid in Chromium: its chip in the presence bar with the
percent going up, its target cells marked until written, and gone when the job completes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from jobs.services import JobSpec, job_create, job_start
from tests.browser.test_jobs import (  # noqa: F401 (fixtures)
    PROMPT,
    _fast_client,
    _jobs_settings,
    editor,
    feedback,
    jobs_worker,
)
from tests.conftest import run_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = 8
MODEL_LATENCY_MS = 300  # one row at a time (the worker's JOBS_MAX_IN_FLIGHT): ~2.5 s in all


def test_a_job_started_on_an_open_grid_shows_its_chip_and_marks_until_it_completes(
    page,
    login,
    editor,  # noqa: F811
    feedback,  # noqa: F811
    sandbox,
    jobs_worker,  # noqa: F811 (fixtures)
):
    sandbox.configure(openai={"latency_ms": MODEL_LATENCY_MS})
    rows = list(feedback.rows.order_by("row_number").values_list("pk", flat=True)[:ROWS])
    target = feedback.columns.get(title="Sentiment").pk
    login(editor).goto(f"/sheets/{feedback.pk}/")
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    page.evaluate("window.sameDocument = true")

    # Ticked rows go with Run AI, for the form's "rows selected in the grid".
    run_ai = page.get_by_test_id("run-ai")
    expect(run_ai).to_have_attribute("href", f"/jobs/new?sheet={feedback.pk}")
    for row in rows[:2]:
        page.locator(f"#r-{row} input[name=row]").check()
    expect(run_ai).to_have_attribute(
        "href", f"/jobs/new?sheet={feedback.pk}&rows={rows[0]},{rows[1]}"
    )

    def start() -> Job:
        spec = JobSpec(
            sheet_id=feedback.pk,
            template=PROMPT + "{{Feedback}}",
            target_column_id=target,
            selection="rows",
            row_ids=tuple(rows),
        )
        job = job_create(user=editor, spec=spec)
        return job_start(user=editor, job_id=job.pk)

    job = run_in_thread(start)

    chip = page.locator(f'#grid-workers [data-testid=job-chip][data-job="{job.pk}"]')
    expect(chip).to_contain_text("Fill Sentiment")
    expect(chip).to_have_attribute("href", f"/jobs/{job.pk}/")
    # Its cells show it is at them: queued ones from the rows fetched again, working ones pushed.
    marked = page.locator(f'td[data-col="{target}"][data-job="{job.pk}"]')
    expect(marked.first).to_be_visible()
    page.screenshot(path="/tmp/grid-job-running.png")
    expect(chip.get_by_test_id("job-chip-percent")).not_to_have_text("0%", timeout=10_000)

    expect(chip).to_have_count(0, timeout=20_000)  # completed: the chip goes …
    expect(page.locator("td.job-queued, td.job-working, td.job-failed")).to_have_count(0)
    assert Job.objects.get(pk=job.pk).status == Job.Status.COMPLETED
    for row in rows:  # … and every target cell shows what was written
        expect(page.locator(f"#c-{row}-{target}")).to_have_text(
            re.compile("^(Positive|Neutral|Negative)$")
        )
    assert page.evaluate("window.sameDocument") is True  # all pushed, never reloaded
