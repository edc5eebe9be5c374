"""Fixtures for AI jobs: Customer Feedback mirrored, an editor, the sandbox model, short timings."""

from __future__ import annotations

import pytest

from core.redis import redis_client
from jobs.services import JobSpec, job_create
from sheets import sync
from sheets.models import Column, Sheet, SheetGrant
from tests.ai.conftest import _forget_ai_state
from tests.sheets.conftest import (  # noqa: F401 (fixtures)
    _fast_client,
    group_inbox,
    other_user_client,
    sheet_id_named,
    smartsheet_stats,
)

FEEDBACK = "Customer Feedback"
SENTIMENT_PROMPT = "Classify the sentiment of this customer feedback: {{Feedback}}"
SUMMARY_PROMPT = "Summarize this feedback from {{Customer}} in one sentence: {{Feedback}}"


@pytest.fixture(autouse=True)
def _jobs_settings(settings, sandbox):
    _forget_ai_state()
    redis = redis_client()
    stale = list(redis.scan_iter(match=f"{settings.REDIS_PREFIX}:jobs:*"))
    if stale:
        redis.delete(*stale)  # other tests' jobs in the priority list
    settings.AZURE_OPENAI_ENDPOINT = sandbox.url
    settings.AZURE_OPENAI_API_KEY = "sandbox-key"
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-4o-mini"
    settings.AZURE_OPENAI_FALLBACK_DEPLOYMENT = ""
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 3
    settings.AZURE_OPENAI_MAX_WAIT = 10.0
    settings.AZURE_OPENAI_BACKOFF_BASE = 0.02
    settings.JOBS_FLUSH_SECONDS = 0.5
    settings.JOBS_HEARTBEAT_SECONDS = 0.2
    settings.JOBS_MAX_IN_FLIGHT = 8
    yield
    _forget_ai_state()


@pytest.fixture(autouse=True)
def enqueued(request, monkeypatch) -> list[int]:
    """Jobs handed to Celery, recorded instead of sent, unless the test runs real workers.

    A test that runs a job in-process after resume or retry must not race a session worker
    (started for other tests in the same process) for it.
    """
    sent: list[int] = []
    if {"workers", "celery_worker"} & set(request.fixturenames):
        return sent
    from jobs.tasks import job_run_task

    monkeypatch.setattr(job_run_task, "apply_async", lambda args, **kw: sent.append(args[0]))
    return sent


@pytest.fixture
def feedback(sandbox, db) -> Sheet:
    """Customer Feedback (2,000 rows), mirrored by a full sync."""
    sheet_id = sheet_id_named(sandbox, FEEDBACK)
    sync.sheets_discover(sheet_ids=[sheet_id])
    sync.sheet_sync(sheet_id=sheet_id)
    return Sheet.objects.get(pk=sheet_id)


@pytest.fixture
def editor(alice, feedback):
    SheetGrant.objects.create(sheet=feedback, user=alice, role="edit")
    return alice


@pytest.fixture
def viewer(bob, feedback):
    SheetGrant.objects.create(sheet=feedback, user=bob, role="view")
    return bob


def column(sheet: Sheet, title: str) -> Column:
    return Column.objects.get(sheet=sheet, title=title)


def first_rows(sheet: Sheet, count: int) -> tuple[int, ...]:
    return tuple(sheet.rows.order_by("row_number").values_list("pk", flat=True)[:count])


def spec(sheet: Sheet, *, template: str = SENTIMENT_PROMPT, target: str = "Sentiment", **fields):
    return JobSpec(
        sheet_id=sheet.pk,
        template=template,
        target_column_id=column(sheet, target).pk,
        **fields,
    )


def created(user, job_spec: JobSpec, **kwargs):
    """A queued job, not handed to Celery: the test runs it in-process with job_run."""
    return job_create(user=user, spec=job_spec, **kwargs)


def remote_values(sandbox, sheet: Sheet, title: str, row_ids) -> dict[int, object]:
    """What Smartsheet (the sandbox) holds in one column of these rows, read as another user."""
    target = column(sheet, title)
    remote = other_user_client(sandbox).Sheets.get_sheet(
        sheet.pk, row_ids=list(row_ids), column_ids=[target.pk]
    )
    return {
        int(r.id): next((c.value for c in r.cells if c.column_id == target.pk), None)
        for r in remote.rows
    }


def openai_requests(sandbox) -> int:
    return sandbox.stats()["services"].get("openai", {}).get("requests", 0)
