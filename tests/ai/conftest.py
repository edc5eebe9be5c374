"""Fixtures for the Azure OpenAI client tests: a clean limiter and breaker per test,
and small settings so the retries and waits of a test take fractions of a second."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings


def _forget_ai_state() -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    prefix = django_settings.REDIS_PREFIX
    for pattern in (f"{prefix}:ratelimit:azure-openai:*", f"{prefix}:breaker:azure-openai:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def _clean_ai_state():
    _forget_ai_state()
    yield
    _forget_ai_state()


@pytest.fixture
def ai(settings, sandbox):
    """The sandbox, with settings that keep the client's waits short and no fallback."""
    settings.AZURE_OPENAI_ENDPOINT = sandbox.url
    settings.AZURE_OPENAI_API_KEY = "sandbox-key"
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-4o-mini"
    settings.AZURE_OPENAI_FALLBACK_DEPLOYMENT = ""
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 3
    settings.AZURE_OPENAI_MAX_WAIT = 10.0
    settings.AZURE_OPENAI_TIMEOUT = 10.0
    settings.AZURE_OPENAI_BACKOFF_BASE = 0.02
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 5
    settings.AZURE_OPENAI_BREAKER_RESET_TIMEOUT = 30.0
    return sandbox


def quota(settings, sandbox, *, rpm: int, tpm: int, window: float = 10.0) -> None:
    """The same quota for gpt-4o-mini in our settings and in the sandbox."""
    deployments = dict(settings.AZURE_OPENAI_DEPLOYMENTS)
    deployments["gpt-4o-mini"] = {**deployments["gpt-4o-mini"], "rpm": rpm, "tpm": tpm}
    settings.AZURE_OPENAI_DEPLOYMENTS = deployments
    settings.AZURE_OPENAI_RPM_WINDOW = window
    sandbox.configure(openai={"rpm": rpm, "tpm": tpm, "rpm_window_s": window})


def openai_stats(sandbox) -> dict:
    return sandbox.stats()["services"].get(
        "openai", {"requests": 0, "rate_limited": 0, "counters": {}}
    )
