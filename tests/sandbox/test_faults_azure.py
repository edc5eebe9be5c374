"""Scripted faults on the Azure OpenAI side, as the openai package sees each kind."""

from __future__ import annotations

import time

import openai
import pytest

from tests.sandbox.test_azure_openai import ask, client, counters, post

ROUTE = "POST /openai/deployments/{name}/chat/completions"
LONG_PROMPT = ask("Summarize: the export dialog froze twice today, and support never called back.")


def test_a_429_carries_azure_retry_after_headers_and_body(sandbox):
    sandbox.fault("openai", 429, deployment="gpt-4o-mini", retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        client(sandbox).chat.completions.create(model="gpt-4o-mini", messages=ask("hi"))
    headers = caught.value.response.headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("2000", "2")
    assert headers["x-ratelimit-limit-requests"] == "600"
    assert caught.value.code == "429"
    assert "Try again in 2 seconds" in caught.value.message


def test_the_client_waits_out_each_announced_retry_after_and_then_succeeds(sandbox):
    sandbox.fault("openai", 429, times=2, retry_after=0.05)
    reply = client(sandbox, max_retries=2).chat.completions.create(
        model="gpt-4o-mini", messages=ask("hi")
    )
    assert reply.choices[0].finish_reason == "stop"
    stats = sandbox.stats()
    assert stats["services"]["openai"]["requests"] == 3
    assert stats["faults"]["fired"] == 2
    # The sandbox remembers the window it announced: no retry arrived inside it.
    assert "requests_inside_retry_window" not in counters(sandbox)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_reach_the_client_as_internal_server_error(sandbox, status):
    sandbox.fault("openai", status, route=ROUTE)
    with pytest.raises(openai.InternalServerError) as caught:
        client(sandbox).chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert caught.value.status_code == status
    assert caught.value.message
    assert sandbox.stats()["services"]["openai"]["injected_failures"] == 1
    assert client(sandbox).chat.completions.create(model="gpt-4o", messages=ask("hi")).choices


def test_a_timeout_outlasts_the_client_which_gives_up(sandbox):
    sandbox.fault("openai", "timeout", seconds=30)
    with pytest.raises(openai.APITimeoutError):
        client(sandbox, timeout=0.3).chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert client(sandbox, timeout=5).chat.completions.create(model="gpt-4o", messages=ask("hi"))


def test_a_timeout_drops_the_connection_when_the_client_waits_longer(sandbox):
    sandbox.fault("openai", "timeout", seconds=0.3)
    started = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as caught:
        client(sandbox, timeout=30).chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert time.monotonic() - started >= 0.3


def test_a_stream_cut_sends_the_first_chunks_then_drops_without_done(sandbox):
    sandbox.fault("openai", "stream_cut", after_chunks=4)
    received = []
    stream = client(sandbox).chat.completions.create(
        model="gpt-4o-mini", messages=LONG_PROMPT, stream=True
    )
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 4
    assert received[0].choices == []  # Azure's prompt-filter chunk counts as one
    assert received[1].choices[0].delta.role == "assistant"
    assert all(c.choices[0].finish_reason is None for c in received[1:])

    whole = client(sandbox).chat.completions.create(
        model="gpt-4o-mini", messages=LONG_PROMPT, stream=True
    )
    assert [c.choices[0].finish_reason for c in whole if c.choices][-1] == "stop"


def test_a_stream_cut_on_a_plain_completion_loses_the_body(sandbox):
    sandbox.fault("openai", "stream_cut")
    with pytest.raises(openai.APIConnectionError):
        client(sandbox).chat.completions.create(model="gpt-4o-mini", messages=ask("hi"))


def test_a_prompt_content_filter_is_azures_400(sandbox):
    sandbox.fault("openai", "content_filter", deployment="gpt-4o")
    with pytest.raises(openai.BadRequestError) as caught:
        client(sandbox).chat.completions.create(model="gpt-4o", messages=ask("a harmless prompt"))
    assert caught.value.code == "content_filter"
    error = caught.value.body
    assert error["param"] == "prompt" and error["status"] == 400
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert counters(sandbox)["content_filtered_prompts"] == 1


def test_a_completion_content_filter_stops_the_reply_with_finish_reason_content_filter(sandbox):
    whole = client(sandbox).chat.completions.create(model="gpt-4o", messages=LONG_PROMPT)
    sandbox.fault("openai", "content_filter", on="completion", times=2)
    reply = client(sandbox).chat.completions.create(model="gpt-4o", messages=LONG_PROMPT)
    choice = reply.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.model_extra["content_filter_results"]["violence"]["filtered"] is True
    assert len(choice.message.content) < len(whole.choices[0].message.content)

    chunks = list(
        client(sandbox).chat.completions.create(model="gpt-4o", messages=LONG_PROMPT, stream=True)
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert counters(sandbox)["content_filtered_completions"] == 2


def test_a_malformed_request_is_answered_as_azure_does_and_consumes_no_fault(sandbox):
    sandbox.fault("openai", 500)
    assert post(sandbox, {"messages": []}).status_code == 400
    assert sandbox.faults()[0]["remaining"] == 1
    assert post(sandbox, {"messages": ask("hi")}).status_code == 500


def test_a_request_inside_an_armed_429s_retry_window_is_counted(sandbox):
    sandbox.fault("openai", 429, retry_after=30)
    assert post(sandbox, {"messages": ask("hi")}).status_code == 429
    assert post(sandbox, {"messages": ask("hi")}).status_code == 200  # came back too early
    assert counters(sandbox)["requests_inside_retry_window.gpt-4o-mini"] == 1
