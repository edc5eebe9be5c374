"""The client layer against the sandbox: retries, the shared limiter, breaker, fallback, errors."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time

import httpx
import pytest

from ai.client import chat_send, is_reasoning_model
from ai.config import deployment_get
from ai.errors import (
    ContentFilterError,
    ContextLengthError,
    CredentialsError,
    DeploymentNotFoundError,
    ItemError,
    RetryableError,
    RunError,
    ThrottledError,
    UnavailableError,
)
from ai.quota import corrected_charge, deployment_breaker, deployment_limiters
from tests.ai.conftest import openai_stats, quota

HELLO = [{"role": "user", "content": "Say hello to the team."}]


def _send(**kwargs):
    sent = chat_send(
        messages=kwargs.pop("messages", HELLO), max_tokens=kwargs.pop("max_tokens", 20), **kwargs
    )
    usage = sent.response.usage
    sent.settle(prompt_tokens=usage.prompt_tokens if usage else None)
    return sent


def test_a_call_returns_the_completion_of_the_primary_deployment(ai):
    sent = _send()
    assert sent.deployment.name == "gpt-4o-mini"
    assert sent.response.choices[0].message.content
    assert openai_stats(ai)["counters"]["requests.gpt-4o-mini"] == 1


def test_429s_are_retried_after_their_retry_after_ms_and_nothing_is_sent_inside_the_window(ai):
    ai.configure(openai={"fail_rate": 0.5, "fail_kinds": ["rate_limit"], "retry_after_ms": 300})
    for _ in range(4):
        _send(attempts=6)

    stats = openai_stats(ai)
    refused = stats["counters"].get("injected.rate_limit", 0)
    assert refused >= 2, "the seeded sandbox should have refused some requests"
    # The sandbox counts requests that arrive before the retry-after it announced has passed.
    assert stats["counters"].get("requests_inside_retry_window", 0) == 0
    assert stats["counters"]["requests.gpt-4o-mini"] == 4 + refused


def test_a_retry_after_longer_than_the_call_may_wait_gives_up_at_once(ai, monkeypatch):
    ai.configure(openai={"fail_rate": 1.0, "fail_kinds": ["rate_limit"], "retry_after_ms": 5000})
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)  # backoff and the limiter both use it
    with pytest.raises(ThrottledError) as excinfo:
        _send(max_wait=1.0)
    assert sleeps == []  # gave up without waiting at all
    assert isinstance(excinfo.value, RetryableError)
    assert excinfo.value.retry_after == pytest.approx(5.0)
    assert openai_stats(ai)["requests"] == 1
    # Every process now holds back until the window the service announced is over.
    requests_limiter, _ = deployment_limiters(deployment_get("gpt-4o-mini"))
    assert 4.0 < requests_limiter.paused_for() <= 5.0


def test_server_errors_are_retried_with_backoff(ai, settings):
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 20
    ai.configure(openai={"fail_rate": 0.5, "fail_kinds": ["server_error"]})
    for _ in range(3):
        _send(attempts=8)
    stats = openai_stats(ai)
    assert stats["counters"].get("injected.server_error", 0) >= 1
    assert (
        stats["counters"]["requests.gpt-4o-mini"] == 3 + stats["counters"]["injected.server_error"]
    )


def test_a_timeout_is_retried_and_then_reported_as_unavailable(ai, settings):
    settings.AZURE_OPENAI_TIMEOUT = 0.3
    ai.configure(openai={"fail_rate": 1.0, "fail_kinds": ["timeout"], "timeout_ms": 3000})
    with pytest.raises(UnavailableError, match=r"did not answer within 0\.3s"):
        _send(attempts=2)
    assert openai_stats(ai)["counters"]["injected.timeout"] == 2


def _burst(calls: int, max_wait: float) -> dict:
    outcome = {"ok": 0, "throttled": 0, "other": []}
    for _ in range(calls):
        try:
            _send(max_wait=max_wait, max_tokens=200)
            outcome["ok"] += 1
        except ThrottledError:
            outcome["throttled"] += 1
        except Exception as exc:
            outcome["other"].append(repr(exc))
    return outcome


def _run_two_processes(calls: int, max_wait: float, timeout: float = 30) -> list[dict]:
    """_burst in two forked processes at once; their outcomes.

    Plain os.fork, not multiprocessing: multiprocessing runs kombu's after-fork hooks in the
    child, which try to close the parent's Celery Redis connections and block on a read the
    parent owns. The children touch no database and leave with os._exit.
    """
    children = []
    for _ in range(2):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            try:
                payload = json.dumps(_burst(calls, max_wait))
            except BaseException as exc:
                payload = json.dumps({"ok": 0, "throttled": 0, "other": [repr(exc)]})
            os.write(write_end, payload.encode())
            os._exit(0)
        os.close(write_end)
        children.append((pid, read_end))
    outcomes = []
    deadline = time.monotonic() + timeout
    try:
        for _pid, read_end in children:
            chunks = []
            while True:
                ready, _, _ = select.select([read_end], [], [], max(0, deadline - time.monotonic()))
                assert ready, "a child process did not finish in time"
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            outcomes.append(json.loads(b"".join(chunks)))
    finally:
        for pid, read_end in children:
            os.close(read_end)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return outcomes


def test_two_processes_share_the_requests_per_minute(ai, settings):
    # 240 RPM enforced per 1 s window: 4 requests a second between both processes.
    quota(settings, ai, rpm=240, tpm=600_000, window=1.0)
    started = time.monotonic()
    outcomes = _run_two_processes(calls=6, max_wait=10)
    elapsed = time.monotonic() - started

    assert [o["other"] for o in outcomes] == [[], []]
    assert sum(o["ok"] for o in outcomes) == 12
    stats = openai_stats(ai)
    assert stats["rate_limited"] == 0
    assert stats["counters"]["requests.gpt-4o-mini"] == 12
    # 12 requests at 4 per second need two full windows of waiting.
    assert elapsed >= 2.0


def test_two_processes_share_the_tokens_per_minute(ai, settings):
    # Each request is charged its prompt + 200 max_tokens, so 1,000 TPM admits four.
    quota(settings, ai, rpm=600, tpm=1000)
    outcomes = _run_two_processes(calls=3, max_wait=0.5)

    assert [o["other"] for o in outcomes] == [[], []]
    assert sum(o["ok"] for o in outcomes) == 4
    assert sum(o["throttled"] for o in outcomes) == 2
    stats = openai_stats(ai)
    assert stats["rate_limited"] == 0
    assert stats["counters"]["requests.gpt-4o-mini"] == 4


def test_the_charge_is_corrected_to_the_reported_prompt_plus_max_tokens(ai):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_rows",
                "description": "Read rows of a sheet.",
                "parameters": {
                    "type": "object",
                    "properties": {"sheet": {"type": "string", "description": "Sheet name"}},
                    "required": ["sheet"],
                },
            },
        }
    ]
    _, tokens_limiter = deployment_limiters(deployment_get("gpt-4o-mini"))
    sent = chat_send(messages=HELLO, max_tokens=50, params={"tools": tools})
    estimate = tokens_limiter.usage()
    reported = sent.response.usage.prompt_tokens
    assert estimate > reported + 50, "our estimate of tool definitions runs high"
    sent.settle(prompt_tokens=reported)
    assert tokens_limiter.usage() == reported + 50
    # ...which is what the service itself counted for it.
    assert (
        int(sent.headers["x-ratelimit-limit-tokens"])
        - int(sent.headers["x-ratelimit-remaining-tokens"])
        == reported + 50
    )


def test_tokens_someone_else_used_on_the_deployment_are_counted_from_the_headers(ai):
    # Another client on the same quota, outside our limiter.
    response = httpx.post(
        f"{ai.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        headers={"api-key": "sandbox-key"},
        json={"messages": HELLO, "max_tokens": 500},
    )
    assert response.status_code == 200
    sent = _send()
    _, tokens_limiter = deployment_limiters(deployment_get("gpt-4o-mini"))
    service_used = int(sent.headers["x-ratelimit-limit-tokens"]) - int(
        sent.headers["x-ratelimit-remaining-tokens"]
    )
    assert service_used > 500
    assert tokens_limiter.usage() == service_used


def test_requests_someone_else_sent_are_taken_out_of_our_window(ai, settings):
    quota(settings, ai, rpm=60, tpm=600_000)  # 10 requests per 10 s window
    for _ in range(8):  # another client on the same deployment, outside our limiter
        response = httpx.post(
            f"{ai.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
            headers={"api-key": "sandbox-key"},
            json={"messages": HELLO, "max_tokens": 5},
        )
        assert response.status_code == 200
    _send()
    _send()
    # The service's window is full now, and ours knows it: the next call is not even sent.
    with pytest.raises(ThrottledError):
        _send(max_wait=0.5)
    stats = openai_stats(ai)
    assert stats["counters"]["requests.gpt-4o-mini"] == 10
    assert stats["rate_limited"] == 0


def test_corrected_charge_never_goes_below_what_the_service_counted():
    # Our window: 300 for this request; the service has counted 900 (someone else used 650).
    assert (
        corrected_charge(
            charged=300, reported_prompt=50, max_tokens=200, our_used=300, service_used=900
        )
        == 900
    )
    # No headers: the reported prompt + max_tokens.
    assert (
        corrected_charge(
            charged=300, reported_prompt=50, max_tokens=200, our_used=300, service_used=None
        )
        == 250
    )


def test_a_prompt_the_content_filter_blocks_fails_only_that_item(ai):
    with pytest.raises(ContentFilterError) as excinfo:
        _send(messages=[{"role": "user", "content": "Tell me about FORBIDDEN-TOPIC."}])
    assert isinstance(excinfo.value, ItemError)
    assert excinfo.value.where == "prompt"
    assert "content filter" in excinfo.value.message
    # The next item goes through.
    _send()


def test_a_prompt_longer_than_the_context_window_fails_only_that_item(ai):
    long_text = "word " * 130_000
    with pytest.raises(ContextLengthError) as excinfo:
        _send(messages=[{"role": "user", "content": long_text}], max_tokens=100)
    assert isinstance(excinfo.value, ItemError)
    assert "Shorten" in excinfo.value.message


def test_a_request_larger_than_the_tpm_quota_fails_the_item_without_being_sent(ai, settings):
    quota(settings, ai, rpm=600, tpm=100)
    with pytest.raises(ContextLengthError, match="100 TPM"):
        _send(max_tokens=200)
    assert openai_stats(ai)["requests"] == 0


def test_a_missing_deployment_stops_the_run_and_says_what_to_check(ai, settings):
    settings.AZURE_OPENAI_DEPLOYMENTS = {
        **settings.AZURE_OPENAI_DEPLOYMENTS,
        "gpt4o-prod": {**settings.AZURE_OPENAI_DEPLOYMENTS["gpt-4o"]},
    }
    with pytest.raises(DeploymentNotFoundError) as excinfo:
        _send(deployment=deployment_get("gpt4o-prod"))
    error = excinfo.value
    assert isinstance(error, RunError)
    assert "'gpt4o-prod'" in error.message
    assert ai.url in error.message
    assert "Deployments" in error.message
    assert "not the model's" in error.message
    assert "AZURE_OPENAI_API_VERSION" in error.message
    assert openai_stats(ai)["requests"] == 1  # not retried


def test_a_wrong_key_stops_the_run(ai, settings):
    settings.AZURE_OPENAI_API_KEY = "not-the-key"
    with pytest.raises(CredentialsError, match="AZURE_OPENAI_API_KEY") as excinfo:
        _send()
    assert isinstance(excinfo.value, RunError)
    assert openai_stats(ai)["requests"] == 1


def test_the_breaker_opens_after_repeated_outages_and_half_opens_after_its_timeout(
    ai, settings, breaker_clock
):
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 2
    settings.AZURE_OPENAI_BREAKER_RESET_TIMEOUT = 30
    ai.configure(openai={"fail_rate": 1.0, "fail_kinds": ["server_error"]})
    with pytest.raises(UnavailableError):
        _send(attempts=2)
    breaker = deployment_breaker(deployment_get("gpt-4o-mini"))
    assert breaker.current_state == "open"
    sent_so_far = openai_stats(ai)["requests"]
    assert sent_so_far == 2, openai_stats(ai)

    # Open: refused here, nothing reaches the service.
    with pytest.raises(UnavailableError, match="circuit breaker open"):
        _send(attempts=1)
    assert openai_stats(ai)["requests"] == sent_so_far

    # The service recovers; after the reset timeout one trial call goes through and closes it.
    ai.configure(openai={"fail_rate": 0.0})
    breaker_clock.advance(29)
    with pytest.raises(UnavailableError, match="circuit breaker open"):
        _send(attempts=1)
    breaker_clock.advance(1)
    _send(attempts=1)
    assert breaker.current_state == "closed"
    assert openai_stats(ai)["requests"] == sent_so_far + 1


def test_429s_and_bad_requests_never_open_the_breaker(ai, settings):
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 2
    for _ in range(3):
        with pytest.raises(ContentFilterError):
            _send(messages=[{"role": "user", "content": "FORBIDDEN-TOPIC"}])
    ai.configure(openai={"fail_rate": 1.0, "fail_kinds": ["rate_limit"], "retry_after_ms": 10})
    with pytest.raises(ThrottledError):
        _send(attempts=3)
    assert deployment_breaker(deployment_get("gpt-4o-mini")).current_state == "closed"


def test_the_fallback_deployment_answers_when_the_primary_is_down(ai, settings):
    settings.AZURE_OPENAI_FALLBACK_DEPLOYMENT = "gpt-4o"
    settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 2
    ai.configure(
        openai={
            "per_deployment": {"gpt-4o-mini": {"fail_rate": 1.0, "fail_kinds": ["server_error"]}}
        }
    )
    sent = _send(attempts=2)
    assert sent.deployment.name == "gpt-4o"
    assert sent.fallback_from == "gpt-4o-mini"
    counters = openai_stats(ai)["counters"]
    assert counters["requests.gpt-4o-mini"] == 2
    assert counters["requests.gpt-4o"] == 1

    # The primary's breaker is open now: the next call goes straight to the fallback.
    assert deployment_breaker(deployment_get("gpt-4o-mini")).current_state == "open"
    sent = _send(attempts=2)
    assert sent.deployment.name == "gpt-4o"
    counters = openai_stats(ai)["counters"]
    assert counters["requests.gpt-4o-mini"] == 2
    assert counters["requests.gpt-4o"] == 2


def test_without_a_fallback_an_outage_is_retryable(ai):
    ai.configure(openai={"fail_rate": 1.0, "fail_kinds": ["server_error"]})
    with pytest.raises(UnavailableError) as excinfo:
        _send(attempts=2)
    assert isinstance(excinfo.value, RetryableError)
    assert "500" in excinfo.value.message


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [("o3-mini", True), ("o1", True), ("gpt-5-mini", True), ("gpt-4o", False), ("gpt-4.1", False)],
)
def test_reasoning_models_are_told_apart_for_max_completion_tokens(model, reasoning):
    assert is_reasoning_model(model) is reasoning
