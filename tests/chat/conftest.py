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
