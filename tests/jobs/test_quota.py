"""Jobs at the quota's pace: bulk writes, few Smartsheet calls, 429s ridden out, progress."""

from __future__ import annotations

import contextlib
import time

import pytest

from ai.client import openai_client
from jobs.events import job_group
from jobs.models import Job
from jobs.runner import job_run
from sheets.client import _TimeoutMixin
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


class _Watch:
    """What our clients did, on Redis's clock: when each request passed the pause check (by its
    request id) and the pauses the 429s they received set (start, end)."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.pauses: list[tuple[float, float]] = []

    def sent_inside_a_pause(self) -> list[tuple[str, float]]:
        return [
            (rid, at) for rid, at in self.sent.items() if any(p <= at < u for p, u in self.pauses)
        ]


@contextlib.contextmanager
def _watching_azure():
    """Observes the openai package's HTTP client (hooks after ours; nothing is changed)."""
    watch = _Watch()

    def on_request(request):
        watch.sent[request.headers["x-ms-client-request-id"]] = request.extensions[
            "workbench.sent_at"
        ]

    def on_response(response):
        pause = response.request.extensions.get("workbench.paused")
        if pause:
            watch.pauses.append(pause)

    http = openai_client()._client
    hooks = http.event_hooks
    http.event_hooks = {
        "request": [*hooks["request"], on_request],
        "response": [*hooks["response"], on_response],
    }
    try:
        yield watch
    finally:
        http.event_hooks = hooks


@contextlib.contextmanager
def _watching_smartsheet(monkeypatch):
    """Observes the SDK's transport adapter (calls through to it; nothing is changed)."""
    watch = _Watch()
    send = _TimeoutMixin.send

    def watching_send(self, request, **kwargs):
        response = send(self, request, **kwargs)
        watch.sent[request.headers["X-Request-Id"]] = request.workbench_sent_at
        pause = getattr(response, "workbench_paused", None)
        if pause:
            watch.pauses.append(pause)
        return response

    monkeypatch.setattr(_TimeoutMixin, "send", watching_send)
    yield watch


def _logged_inside_a_pause(sandbox, service: str, watch: _Watch, since: float) -> list[dict]:
    """Requests the sandbox saw arrive inside a pause, each with the pause it arrived in."""
    logged = sandbox.control("GET", "requests", params={"service": service}).json()["requests"]
    inside = []
    for entry in logged:
        if entry["arrived"] < since:
            continue
        for start, end in watch.pauses:
            if start <= entry["arrived"] < end:
                inside.append({**entry, "pause_start": start})
    return inside


@pytest.mark.django_db(transaction=True)
def test_injected_429s_delay_the_job_and_no_request_is_sent_inside_a_window_once_a_429_came(
    editor, feedback, sandbox, settings, monkeypatch
):
    sandbox.configure(
        openai={"fail_rate": 0.3, "fail_kinds": ["rate_limit"], "retry_after_ms": 200},
        smartsheet={"fail_rate": 0.5, "fail_codes": [4003]},
    )
    settings.SMARTSHEET_RATE_LIMIT_PAUSE = 0.2
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 6
    settings.JOBS_MAX_IN_FLIGHT = 4
    settings.JOBS_FLUSH_SECONDS = 0.1  # many small flushes: more Smartsheet 429s to ride out
    rows = first_rows(feedback, 40)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    since = time.time()

    with _watching_azure() as azure, _watching_smartsheet(monkeypatch) as smartsheet:
        assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    job.refresh_from_db()
    assert job.rows_done == 40
    counters = openai_stats(sandbox)["counters"]
    refused = counters.get("injected_failures.gpt-4o-mini", 0)
    assert refused > 0 and len(azure.pauses) == refused
    assert smartsheet_stats(sandbox)["injected_failures"] > 0 and smartsheet.pauses
    # Every retry waited out its retry-after: the model was asked once per row plus once per 429.
    assert counters["requests.gpt-4o-mini"] == 40 + refused
    # Once a 429 was received, no request left inside the window it announced, from any thread.
    assert azure.sent_inside_a_pause() == []
    assert smartsheet.sent_inside_a_pause() == []
    # The sandbox's log agrees: what arrived inside a window had been sent before it began
    # (already in flight when the 429 came back), and every request it saw passed our check.
    for service, watch in (("openai", azure), ("smartsheet", smartsheet)):
        for entry in _logged_inside_a_pause(sandbox, service, watch, since):
            assert watch.sent[entry["request_id"]] < entry["pause_start"], entry
    logged = sandbox.control("GET", "requests", params={"service": "openai"}).json()["requests"]
    assert {e["request_id"] for e in logged if e["arrived"] >= since} == set(azure.sent)
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
