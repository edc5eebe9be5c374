"""Azure OpenAI stand-in: keys, deployments, rate limits, retry windows, filters, faults."""

from __future__ import annotations

import logging
import time

import httpx
import openai
import pytest

from tests.sandbox.test_azure_openai import ask, client, counters, post


def test_a_bad_key_is_refused_with_azures_401(sandbox):
    with pytest.raises(openai.AuthenticationError):
        openai.AzureOpenAI(
            azure_endpoint=sandbox.url, api_key="wrong", api_version="2024-10-21", max_retries=0
        ).chat.completions.create(model="gpt-4o", messages=ask("hi"))
    response = post(sandbox, {"messages": ask("hi")}, headers={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "401"
    assert response.json()["error"]["message"].startswith("Access denied due to invalid")


def test_an_unknown_deployment_is_a_not_found_error_with_azures_code(sandbox):
    with pytest.raises(openai.NotFoundError) as caught:
        client(sandbox).chat.completions.create(model="gpt-4-turbo", messages=ask("hi"))
    assert caught.value.code == "DeploymentNotFound"


def test_a_missing_api_version_is_not_found(sandbox):
    response = httpx.post(
        f"{sandbox.url}/openai/deployments/gpt-4o/chat/completions",
        json={"messages": ask("hi")},
        headers={"api-key": "sandbox-key"},
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_rate_limit_headers_are_on_every_response_and_go_down(sandbox):
    first = post(sandbox, {"messages": ask("hello"), "max_tokens": 50})
    second = post(sandbox, {"messages": ask("hello"), "max_tokens": 50})
    for response in (first, second):
        assert response.headers["x-ratelimit-limit-requests"] == "600"
        assert response.headers["x-ratelimit-limit-tokens"] == "600000"
    assert int(second.headers["x-ratelimit-remaining-requests"]) == (
        int(first.headers["x-ratelimit-remaining-requests"]) - 1
    )
    # Each request is charged up front: its prompt (3 + "user" 1 + "hello" 1 + 3 = 8) + max_tokens.
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == (
        int(first.headers["x-ratelimit-remaining-tokens"]) - 58
    )


def test_rpm_is_enforced_on_a_ten_second_window(sandbox):
    sandbox.configure(openai={"rpm": 6})  # 6 per minute is 1 per 10 s
    assert post(sandbox, {"messages": ask("hi")}).status_code == 200
    refused = post(sandbox, {"messages": ask("hi")})
    assert refused.status_code == 429
    assert 9000 <= int(refused.headers["retry-after-ms"]) <= 10000
    assert refused.headers["retry-after"] == "10"
    assert refused.json()["error"]["code"] == "429"
    assert refused.json()["error"]["message"].startswith(
        "Rate limit is exceeded. Try again in 10 seconds."
    )
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert sandbox.stats()["services"]["openai"]["rate_limited"] == 1


def test_tpm_is_charged_on_prompt_plus_max_tokens(sandbox):
    sandbox.configure(openai={"tpm": 150})
    assert post(sandbox, {"messages": ask("hi"), "max_tokens": 100}).status_code == 200
    refused = post(sandbox, {"messages": ask("hi"), "max_tokens": 100})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after-ms"]) > 50_000
    # A small request still fits in what is left of the minute.
    assert post(sandbox, {"messages": ask("hi"), "max_tokens": 5}).status_code == 200


def test_the_openai_package_honours_retry_after_ms_and_stays_out_of_the_window(sandbox, caplog):
    sandbox.configure(openai={"rpm": 60, "rpm_window_s": 1.0})  # 1 request per second
    c = client(sandbox, max_retries=2)
    c.chat.completions.create(model="gpt-4o-mini", messages=ask("first"))
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="openai"):
        reply = c.chat.completions.create(model="gpt-4o-mini", messages=ask("second"))
    elapsed = time.monotonic() - started
    waits = [r.args[0] for r in caplog.records if r.msg.startswith("Retrying request in")]
    assert reply.choices[0].message.content
    # The wait is what was left of the window when the 429 came (less on a slow machine).
    assert len(waits) == 1 and 0 < waits[0] <= 1.0
    assert elapsed >= waits[0]
    stats = sandbox.stats()["services"]["openai"]
    assert stats["requests"] == 3 and stats["rate_limited"] == 1
    assert counters(sandbox).get("requests_inside_retry_window", 0) == 0


def test_a_client_that_ignores_retry_after_is_counted_inside_the_window(sandbox):
    sandbox.configure(openai={"rpm": 6})
    post(sandbox, {"messages": ask("hi")})
    assert post(sandbox, {"messages": ask("hi")}).status_code == 429
    assert post(sandbox, {"messages": ask("hi")}).status_code == 429
    assert counters(sandbox)["requests_inside_retry_window"] == 1
    assert counters(sandbox)["requests_inside_retry_window.gpt-4o-mini"] == 1


def test_a_prompt_with_the_trigger_phrase_is_blocked_by_the_content_filter(sandbox):
    with pytest.raises(openai.BadRequestError) as caught:
        client(sandbox).chat.completions.create(
            model="gpt-4o", messages=ask("Tell me about FORBIDDEN-TOPIC please")
        )
    assert caught.value.code == "content_filter"
    error = caught.value.body
    assert error["param"] == "prompt" and error["status"] == 400
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["hate"]["filtered"] is True


def test_a_completion_filter_stops_the_reply_with_finish_reason_content_filter(sandbox):
    reply = client(sandbox).chat.completions.create(
        model="gpt-4o",
        messages=ask("Summarize: FILTER-COMPLETION the meeting ran long and nothing was decided."),
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.model_extra["content_filter_results"]["violence"]["filtered"] is True
    assert len(choice.message.content) < len("the meeting ran long and nothing was decided.")


def test_injected_server_errors_surface_as_internal_server_error(sandbox):
    sandbox.configure(openai={"fail_rate": 1.0, "fail_kinds": ["server_error"]})
    with pytest.raises(openai.InternalServerError) as caught:
        client(sandbox).chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert caught.value.status_code == 500
    assert caught.value.body["type"] == "server_error"
    stats = sandbox.stats()["services"]["openai"]
    assert stats["injected_failures"] == 1
    assert stats["counters"]["injected.server_error"] == 1


def test_an_injected_timeout_holds_until_the_client_gives_up(sandbox):
    sandbox.configure(openai={"fail_rate": 1.0, "fail_kinds": ["timeout"], "timeout_ms": 3000})
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(sandbox, timeout=0.3).chat.completions.create(model="gpt-4o", messages=ask("hi"))
    # A timeout, not the 408 the sandbox answers after 3 s: it held until the client gave up.
    assert time.monotonic() - started >= 0.3


def test_an_injected_timeout_answers_408_when_the_client_waits(sandbox):
    sandbox.configure(openai={"fail_rate": 1.0, "fail_kinds": ["timeout"], "timeout_ms": 200})
    started = time.monotonic()
    response = post(sandbox, {"messages": ask("hi")})
    assert response.status_code == 408
    assert time.monotonic() - started >= 0.2


def test_injected_rate_limits_announce_the_configured_retry_after(sandbox):
    sandbox.configure(openai={"fail_rate": 1.0, "retry_after_ms": 1234})
    response = post(sandbox, {"messages": ask("hi")})
    assert response.status_code == 429
    assert response.headers["retry-after-ms"] == "1234"
    assert response.headers["retry-after"] == "2"


def test_injected_faults_repeat_the_same_sequence_after_a_reset(sandbox):
    def statuses() -> list[int]:
        sandbox.configure(openai={"fail_rate": 0.5, "fail_kinds": ["server_error"]})
        return [post(sandbox, {"messages": ask("hi")}).status_code for _ in range(12)]

    first = statuses()
    sandbox.reset()
    assert statuses() == first
    assert set(first) == {200, 500}


def test_per_deployment_settings_take_one_deployment_down_and_limit_another(sandbox):
    sandbox.configure(
        openai={
            "per_deployment": {
                "gpt-4o": {"fail_rate": 1.0, "fail_kinds": ["server_error"]},
                "gpt-4o-mini": {"rpm": 12, "tpm": 5000},
            }
        }
    )
    assert post(sandbox, {"messages": ask("hi")}, deployment="gpt-4o").status_code == 500
    mini = post(sandbox, {"messages": ask("hi")}, deployment="gpt-4o-mini")
    assert mini.status_code == 200
    assert mini.headers["x-ratelimit-limit-requests"] == "12"
    assert mini.headers["x-ratelimit-limit-tokens"] == "5000"
    assert counters(sandbox)["requests.gpt-4o"] == 1
    assert counters(sandbox)["injected_failures.gpt-4o"] == 1


def test_an_unknown_per_deployment_key_is_refused_with_a_helpful_message(sandbox):
    with pytest.raises(httpx.HTTPStatusError) as caught:
        sandbox.configure(openai={"per_deployment": {"gpt-4o": {"rmp": 5}}})
    assert "unknown keys ['rmp']" in caught.value.response.json()["error"]


def test_max_tokens_above_the_model_limit_is_a_bad_request(sandbox):
    with pytest.raises(openai.BadRequestError) as caught:
        client(sandbox).chat.completions.create(
            model="gpt-4o", messages=ask("hi"), max_tokens=20000
        )
    assert "max_tokens is too large" in caught.value.message
