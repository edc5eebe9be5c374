"""Fixtures for the chat tests: sessions, queued replies recorded instead of sent, the sandbox."""

from __future__ import annotations

import pytest

from chat import services
from chat.models import ChatSession
from tests.ai.conftest import _forget_ai_state


@pytest.fixture(autouse=True)
def _clean_ai_state():
    _forget_ai_state()
    yield
    _forget_ai_state()


@pytest.fixture(autouse=True)
def _events_beside_playwright(monkeypatch):
    """Once a browser test ran in this process, Playwright's event loop runs in this thread and
    async_to_sync refuses to run here: chat events are then sent from a thread of their own."""
    import asyncio

    from asgiref.sync import async_to_sync

    from chat import events
    from tests.conftest import run_in_thread

    def beside(fn):
        def call(*args, **kwargs):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return async_to_sync(fn)(*args, **kwargs)
            # Made in the other thread: made here, it would hand the call to this thread's
            # loop, which is blocked waiting for it.
            return run_in_thread(lambda: async_to_sync(fn)(*args, **kwargs))

        return call

    monkeypatch.setattr(events, "async_to_sync", beside)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Replies queued for the worker (message ids), recorded instead of sent to the broker."""
    from chat.tasks import assistant_reply_task

    ids: list[int] = []
    monkeypatch.setattr(assistant_reply_task, "delay", lambda message_id: ids.append(message_id))
    return ids


@pytest.fixture
def ai(settings, sandbox):
    settings.AZURE_OPENAI_ENDPOINT = sandbox.url
    settings.AZURE_OPENAI_API_KEY = "sandbox-key"
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-4o-mini"
    settings.AZURE_OPENAI_FALLBACK_DEPLOYMENT = ""
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 2
    settings.AZURE_OPENAI_MAX_WAIT = 5.0
    settings.AZURE_OPENAI_BACKOFF_BASE = 0.02
    return sandbox


@pytest.fixture
def session(alice) -> ChatSession:
    return services.session_create(owner=alice)


PROJECT_TRACKER = "Project Tracker"


@pytest.fixture
def tracker(sandbox, db):
    """Project Tracker, mirrored by a full sync."""
    return tracker_mirror(sandbox)


def tracker_mirror(sandbox):
    import smartsheet

    from sheets import sync
    from sheets.models import Sheet
    from tests.plugins.sandbox import USER_AGENT

    owner = smartsheet.Smartsheet(
        access_token="sandbox-token", api_base=sandbox.smartsheet_base, user_agent=USER_AGENT
    )
    owner.errors_as_exceptions(True)
    ids = {s.name: int(s.id) for s in owner.Sheets.list_sheets(include_all=True).data}
    sheet_id = ids[PROJECT_TRACKER]
    sync.sheets_discover(sheet_ids=[sheet_id])
    sync.sheet_sync(sheet_id=sheet_id)
    return Sheet.objects.get(pk=sheet_id)


def reply_to(session, text: str):
    """Send `text` and write the reply here (as the worker would); the reply, re-read."""
    from chat.assistant import assistant_reply

    _question, reply = services.message_send(session=session, text=text)
    assistant_reply(message_id=reply.pk)
    reply.refresh_from_db()
    return reply
