"""Jobs at the quota's pace: bulk writes, few Smartsheet calls, 429s ridden out, progress."""

from __future__ import annotations

import pytest

from jobs.events import job_group
from jobs.models import Job
from jobs.runner import job_run
from tests.ai.conftest import openai_stats, quota
from tests.jobs.conftest import (
    SUMMARY_PROMPT,
    created,
    first_rows,
    remote_values,
    smartsheet_stats,
    spec,
)


@pytest.mark.django_db(transaction=True)
def test_a_thousand_rows_cost_at_most_three_smartsheet_calls(editor, feedback, sandbox, settings):
    quota(settings, sandbox, rpm=60_000, tpm=60_000_000)
    settings.JOBS_FLUSH_SECONDS = 60.0  # flushes by size only: 1,000 rows
    settings.JOBS_MAX_IN_FLIGHT = 16
    rows = first_rows(feedback, 1000)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    calls_before = smartsheet_stats(sandbox)["requests"]

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    routes = smartsheet_stats(sandbox)["routes"]
    assert smartsheet_stats(sandbox)["requests"] - calls_before <= 3
    assert routes.get("PUT /sheets/{id}/rows") == 2  # 500 rows a request
    values = remote_values(sandbox, feedback, "Sentiment", rows)
    assert None not in values.values() and len(values) == 1000


@pytest.mark.django_db(transaction=True)
def test_injected_429s_from_azure_and_smartsheet_delay_the_job_but_lose_nothing(
    editor, feedback, sandbox, settings
):
    sandbox.configure(
        openai={"fail_rate": 0.3, "fail_kinds": ["rate_limit"], "retry_after_ms": 200},
        smartsheet={"fail_rate": 0.5, "fail_codes": [4003]},
    )
    settings.SMARTSHEET_RATE_LIMIT_PAUSE = 0.2
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 6
    settings.JOBS_MAX_IN_FLIGHT = 4
    rows = first_rows(feedback, 40)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    job.refresh_from_db()
    assert job.rows_done == 40
    counters = openai_stats(sandbox)["counters"]
    refused = counters.get("injected_failures.gpt-4o-mini", 0)
    assert refused > 0
    # Every retry waited out its retry-after: the model was asked once per row plus once per
    # 429. Requests that reach the sandbox inside a window are only those another thread had
    # already sent when the 429 came back (at most the other calls in flight).
    assert counters["requests.gpt-4o-mini"] == 40 + refused
    inside = counters.get("requests_inside_retry_window", 0)
    assert inside <= refused * (settings.JOBS_MAX_IN_FLIGHT - 1)
    assert smartsheet_stats(sandbox)["injected_failures"] > 0
    assert None not in remote_values(sandbox, feedback, "Sentiment", rows).values()


@pytest.mark.django_db(transaction=True)
def test_progress_goes_to_the_jobs_group_until_it_completes(editor, feedback, group_inbox):
    job = created(
        editor,
        spec(
            feedback,
            template=SUMMARY_PROMPT,
            target="Summary",
            selection="rows",
            row_ids=first_rows(feedback, 20),
        ),
    )
    inbox = group_inbox(job_group(job.pk))

    job_run(job_id=job.pk)

    messages = []
    while not messages or messages[-1]["status"] == "running":
        messages.append(inbox.get(timeout=10))
    last = messages[-1]
    assert last["type"] == "job.progress" and last["job_id"] == job.pk
    assert (last["status"], last["rows_done"], last["rows_total"], last["percent"]) == (
        "completed",
        20,
        20,
        100,
    )
    assert float(last["cost"]) > 0 and last["prompt_tokens"] > 0
    finished = {row for message in messages for row in message["finished"]}
    assert finished == set(first_rows(feedback, 20))
