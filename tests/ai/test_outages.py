"""Azure OpenAI calls when something around them fails: a wrong endpoint, an open breaker, Redis
going away and coming back; and where the start-up check's verdict lives."""

from __future__ import annotations

import sys

import pytest

from ai.checks import deployments_check
from ai.config import deployment_get
from ai.errors import UnavailableError
from ai.models import DeploymentVerdict, UsageRecord
from ai.quota import deployment_breaker, deployment_limiters
from ai.services import CallContext, TextDelta, chat_call, chat_stream
from core.processes import process_start, process_stop
from tests.ai.conftest import openai_stats
from tests.conftest import ROOT, START_TIMEOUT, server_env

pytestmark = pytest.mark.django_db

HELLO = [{"role": "user", "content": "Say hello to the team."}]
CHAT = CallContext(purpose="chat", chat_session_id=7)


def _mini():
    return deployment_get("gpt-4o-mini")


def test_a_run_against_a_wrong_endpoint_leaves_the_apps_breaker_closed(ai, settings):
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 2
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 1
    app_endpoint = settings.AZURE_OPENAI_ENDPOINT
    settings.AZURE_OPENAI_ENDPOINT = "http://127.0.0.1:9"  # nobody listens on port 9
    with pytest.raises(
        UnavailableError, match=r"Cannot reach Azure OpenAI at http://127\.0\.0\.1:9"
    ):
        chat_call(messages=HELLO, context=CHAT)
    with pytest.raises(UnavailableError):
        chat_call(messages=HELLO, context=CHAT)
    assert deployment_breaker(_mini()).current_state == "open"

    settings.AZURE_OPENAI_ENDPOINT = app_endpoint
    assert deployment_breaker(_mini()).current_state == "closed"
    assert chat_call(messages=HELLO, context=CHAT).text
    assert openai_stats(ai)["requests"] == 1


def test_the_breaker_is_checked_before_waiting_for_a_limiter_slot(ai, settings):
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 2
    settings.AZURE_OPENAI_MAX_ATTEMPTS = 2
    ai.configure(openai={"fail_rate": 1.0, "fail_kinds": ["server_error"]})
    with pytest.raises(UnavailableError):  # the second outage trips the breaker
        chat_call(messages=HELLO, context=CHAT)
    requests_limiter, tokens_limiter = deployment_limiters(_mini())
    used = (requests_limiter.usage(), tokens_limiter.usage())

    for _ in range(3):
        with pytest.raises(UnavailableError, match="circuit breaker open"):
            chat_call(messages=HELLO, context=CHAT)
    assert (requests_limiter.usage(), tokens_limiter.usage()) == used
    assert openai_stats(ai)["requests"] == 2


def test_with_redis_down_calls_fail_retryably_are_recorded_and_recover_when_it_returns(
    ai, private_redis
):
    assert chat_call(messages=HELLO, context=CHAT).text
    breaker = deployment_breaker(_mini())

    private_redis.stop()
    with pytest.raises(UnavailableError, match="Redis") as excinfo:
        chat_call(messages=HELLO, context=CHAT)
    assert excinfo.value.deployment == "gpt-4o-mini"
    with pytest.raises(UnavailableError, match="Redis"):
        list(chat_stream(messages=HELLO, context=CHAT))
    # Fail closed: nothing the other processes could not count went out...
    assert openai_stats(ai)["requests"] == 1
    # ...and the refusals are on record, the database needing no Redis.
    assert list(UsageRecord.objects.order_by("id").values_list("outcome", flat=True)) == [
        "ok",
        "unavailable",
        "unavailable",
    ]
    assert deployment_breaker(_mini()) is breaker

    private_redis.start()  # empty, as after a restart without persistence
    assert chat_call(messages=HELLO, context=CHAT).text
    events = list(chat_stream(messages=HELLO, context=CHAT))
    assert "".join(e.text for e in events if isinstance(e, TextDelta))
    assert openai_stats(ai)["requests"] == 3
    requests_limiter, _ = deployment_limiters(_mini())
    # Counted in the new Redis (which also takes in the call before the outage, from the
    # service's headers: its window still holds it).
    assert requests_limiter.usage() == 3
    assert not breaker._state_storage.degraded


def test_readyz_and_the_banner_still_know_the_last_verdict_after_redis_restarts(
    ai, private_redis, client, staff, settings
):
    settings.AZURE_OPENAI_API_KEY = "wrong"
    deployments_check()
    private_redis.stop()
    private_redis.start()  # comes back empty

    check = client.get("/readyz").json()["checks"]["azure_openai"]
    assert check["status"] == "down"
    assert "gpt-4o-mini: credentials" in check["error"]
    client.force_login(staff)
    page = client.get("/").content.decode()
    assert 'data-testid="ai-banner"' in page
    assert "gpt-4o-mini: credentials" in page


@pytest.mark.django_db(transaction=True)
def test_a_worker_checks_the_deployments_when_it_starts(ai):
    # The way production triggers it: a real Celery worker's worker_ready signal. gpt-4o is
    # throttled, so its verdict can only come from an actual call.
    ai.configure(
        openai={"per_deployment": {"gpt-4o": {"fail_rate": 1.0, "fail_kinds": ["rate_limit"]}}}
    )
    DeploymentVerdict.objects.all().delete()  # the suite's own worker may have checked before
    worker = process_start(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker"),
            # A queue of its own: it must not take tasks meant for the suite's worker.
            *("-Q", "ai-check-test", "-P", "solo", "--without-gossip", "--without-mingle"),
            *("--without-heartbeat", "-l", "INFO"),
        ],
        ready=lambda: DeploymentVerdict.objects.count() == 2,
        log=ROOT / "var" / "test-celery-check.log",
        timeout=START_TIMEOUT,
        env=server_env(),
        what="the worker's start-up check",
    )
    process_stop(worker)
    verdicts = {v.deployment: v.status for v in DeploymentVerdict.objects.all()}
    assert verdicts == {"gpt-4o-mini": "ok", "gpt-4o": "throttled"}
    assert set(UsageRecord.objects.values_list("purpose", flat=True)) == {"check"}
