"""The calls jobs and chat make: a chat call with tools, a streamed chat call, a structured call
from column descriptions. Each writes one UsageRecord, whatever its outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import openai

from ai.client import Sent, chat_send
from ai.config import Deployment, deployment_get
from ai.errors import AIError, ContentFilterError, InvalidOutputError, UnavailableError
from ai.models import UsageRecord
from ai.schema import Column, response_format_for, values_validate
from ai.tokens import count_messages


@dataclass(frozen=True)
class CallContext:
    """Who a call is for and why; stored on its usage record."""

    purpose: str = "other"
    user_id: int | None = None
    job_id: int | None = None
    chat_session_id: int | None = None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    def as_message_part(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass
class ChatResult:
    text: str
    tool_calls: list[ToolCall]
    finish_reason: str
    deployment: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    fallback_from: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # structured_call only

    def assistant_message(self) -> dict[str, Any]:
        """The reply as a message to append to the conversation before answering its tools."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [call.as_message_part() for call in self.tool_calls]
        return message


@dataclass(frozen=True)
class CallEstimate:
    """What a call will cost at most, counted offline before sending it."""

    deployment: str
    prompt_tokens: int
    max_completion_tokens: int
    max_cost: Decimal  # if the reply used all of max_tokens


def call_estimate(
    *,
    messages: list[dict[str, Any]],
    max_tokens: int,
    deployment: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    columns: Sequence[Column] | None = None,
) -> CallEstimate:
    """Prompt tokens and the most a call can cost (a job's preview multiplies it by its rows)."""
    target = deployment_get(deployment)
    prompt_tokens = count_messages(
        messages,
        model=target.model,
        tools=tools,
        response_format=response_format_for(columns) if columns else None,
    )
    return CallEstimate(
        deployment=target.name,
        prompt_tokens=prompt_tokens,
        max_completion_tokens=max_tokens,
        max_cost=target.cost(prompt_tokens=prompt_tokens, completion_tokens=max_tokens),
    )


def usage_record_create(
    *,
    context: CallContext,
    deployment: Deployment | None,
    outcome: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: int = 0,
    error: str = "",
    fallback_from: str = "",
    deployment_name: str = "",
) -> UsageRecord:
    cost = (
        deployment.cost(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        if deployment is not None
        else Decimal(0)
    )
    record = UsageRecord(
        user_id=context.user_id,
        purpose=context.purpose[:32],
        job_id=context.job_id,
        chat_session_id=context.chat_session_id,
        deployment=(deployment.name if deployment else deployment_name)[:64],
        model=deployment.model if deployment else "",
        fallback_from=fallback_from,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        latency_ms=latency_ms,
        outcome=outcome,
        error=error[:2000],
    )
    record.full_clean()
    record.save()
    return record


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def _record_failure(context: CallContext, exc: AIError, started: float) -> None:
    deployment = None
    if exc.deployment:
        try:
            deployment = deployment_get(exc.deployment)
        except AIError:
            deployment = None
    usage_record_create(
        context=context,
        deployment=deployment,
        deployment_name=exc.deployment,
        outcome=exc.outcome,
        latency_ms=_elapsed_ms(started),
        error=exc.message,
    )


def _parse_arguments(name: str, arguments: str, deployment: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidOutputError(
            f"The model called {name!r} with arguments that are not JSON ({exc}).",
            deployment=deployment,
        ) from exc
    if not isinstance(parsed, dict):
        raise InvalidOutputError(
            f"The model called {name!r} with arguments that are not an object.",
            deployment=deployment,
        )
    return parsed


def _complete(
    *,
    messages: list[dict[str, Any]],
    context: CallContext,
    deployment: str | None,
    max_tokens: int,
    params: dict[str, Any],
    max_wait: float | None,
) -> tuple[Sent, Any, float]:
    started = time.monotonic()
    try:
        sent = chat_send(
            messages=messages,
            max_tokens=max_tokens,
            deployment=deployment_get(deployment) if deployment else None,
            params=params,
            max_wait=max_wait,
        )
    except AIError as exc:
        _record_failure(context, exc, started)
        raise
    completion = sent.response
    usage = completion.usage
    sent.settle(prompt_tokens=usage.prompt_tokens if usage else None)
    return sent, completion, started


def _result(
    sent: Sent, completion: Any, context: CallContext, started: float
) -> tuple[ChatResult, Callable[..., None]]:
    """The first choice as a ChatResult and a function recording the call's usage with its
    outcome; item errors found here are recorded and raised."""
    usage = completion.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    name = sent.deployment.name

    def record(outcome: str, error: str = "") -> None:
        usage_record_create(
            context=context,
            deployment=sent.deployment,
            outcome=outcome,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=_elapsed_ms(started),
            error=error,
            fallback_from=sent.fallback_from,
        )

    try:
        if not completion.choices:
            raise InvalidOutputError("The model returned no choices.", deployment=name)
        choice = completion.choices[0]
        if choice.finish_reason == "content_filter":
            raise ContentFilterError(
                "Azure OpenAI's content filter stopped the reply part-way. Change this item's "
                "text or the prompt.",
                deployment=name,
                where="completion",
            )
        message = choice.message
        if getattr(message, "refusal", None):
            raise InvalidOutputError(
                f"The model refused to answer: {message.refusal}", deployment=name
            )
        calls = [
            ToolCall(
                id=call.id,
                name=call.function.name,
                arguments=_parse_arguments(call.function.name, call.function.arguments, name),
            )
            for call in message.tool_calls or []
        ]
    except AIError as exc:
        record(exc.outcome, exc.message)
        raise
    result = ChatResult(
        text=message.content or "",
        tool_calls=calls,
        finish_reason=choice.finish_reason or "",
        deployment=name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=sent.deployment.cost(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        fallback_from=sent.fallback_from,
    )
    return result, record


def chat_call(
    *,
    messages: list[dict[str, Any]],
    context: CallContext,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    deployment: str | None = None,
    max_tokens: int = 800,
    temperature: float | None = None,
    max_wait: float | None = None,
) -> ChatResult:
    """One chat completion; the reply's text and the tool calls it asks for (arguments parsed).

    Raises RetryableError, ItemError or RunError (see ai.errors).
    """
    params: dict[str, Any] = {}
    if tools:
        params["tools"] = tools
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if temperature is not None:
        params["temperature"] = temperature
    sent, completion, started = _complete(
        messages=messages,
        context=context,
        deployment=deployment,
        max_tokens=max_tokens,
        params=params,
        max_wait=max_wait,
    )
    result, record = _result(sent, completion, context, started)
    record(UsageRecord.Outcome.OK)
    return result


def structured_call(
    *,
    columns: Sequence[Column],
    messages: list[dict[str, Any]],
    context: CallContext,
    deployment: str | None = None,
    max_tokens: int = 400,
    max_wait: float | None = None,
) -> ChatResult:
    """Values for `columns` (a PICKLIST only ever gets one of its options), validated; in
    `result.values`, keyed by column title. Output that does not fit → InvalidOutputError.
    """
    sent, completion, started = _complete(
        messages=messages,
        context=context,
        deployment=deployment,
        max_tokens=max_tokens,
        params={"response_format": response_format_for(columns)},
        max_wait=max_wait,
    )
    result, record = _result(sent, completion, context, started)
    try:
        if result.finish_reason == "length":
            raise InvalidOutputError(
                f"The reply was cut off at max_tokens ({max_tokens}) before the values were "
                "complete. Raise max_tokens.",
                deployment=result.deployment,
            )
        try:
            data = json.loads(result.text)
        except json.JSONDecodeError as exc:
            raise InvalidOutputError(
                f"The reply is not JSON ({exc}).", deployment=result.deployment
            ) from exc
        try:
            result.values = values_validate(columns, data)
        except InvalidOutputError as exc:
            exc.deployment = result.deployment
            raise
    except AIError as exc:
        record(exc.outcome, exc.message)
        raise
    record(UsageRecord.Outcome.OK)
    return result


@dataclass
class StreamEnd:
    """The last event of a stream: why it stopped and what it cost."""

    finish_reason: str
    deployment: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    fallback_from: str = ""


def chat_stream(
    *,
    messages: list[dict[str, Any]],
    context: CallContext,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    deployment: str | None = None,
    max_tokens: int = 800,
    temperature: float | None = None,
    max_wait: float | None = None,
) -> Iterator[TextDelta | ToolCall | StreamEnd]:
    """A chat completion as it is written: TextDelta pieces as they arrive, then each ToolCall
    (arguments assembled from their deltas and parsed), then one StreamEnd.

    A reply the content filter stops raises ContentFilterError after the text already yielded.
    """
    params: dict[str, Any] = {}
    if tools:
        params["tools"] = tools
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if temperature is not None:
        params["temperature"] = temperature
    started = time.monotonic()
    try:
        sent = chat_send(
            messages=messages,
            max_tokens=max_tokens,
            deployment=deployment_get(deployment) if deployment else None,
            stream=True,
            params=params,
            max_wait=max_wait,
        )
    except AIError as exc:
        _record_failure(context, exc, started)
        raise
    name = sent.deployment.name
    stream = sent.response
    calls: dict[int, dict[str, str]] = {}
    finish_reason = ""
    usage = None
    outcome = UsageRecord.Outcome.OK
    error = ""
    try:
        try:
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                # Azure's first chunk carries only prompt_filter_results and no choices.
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        yield TextDelta(delta.content)
                    for part in delta.tool_calls or []:
                        call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                        if part.id:
                            call["id"] = part.id
                        if part.function is not None:
                            call["name"] += part.function.name or ""
                            call["arguments"] += part.function.arguments or ""
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise UnavailableError(
                f"The stream from deployment {name!r} broke off ({exc}).", deployment=name
            ) from exc
        if finish_reason == "content_filter":
            raise ContentFilterError(
                "Azure OpenAI's content filter stopped the reply part-way. Change the message.",
                deployment=name,
                where="completion",
            )
        parsed = [
            ToolCall(
                id=call["id"],
                name=call["name"],
                arguments=_parse_arguments(call["name"], call["arguments"], name),
            )
            for _, call in sorted(calls.items())
        ]
    except AIError as exc:
        outcome, error = exc.outcome, exc.message
        raise
    finally:
        stream.close()
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        sent.settle(prompt_tokens=usage.prompt_tokens if usage else None)
        usage_record_create(
            context=context,
            deployment=sent.deployment,
            outcome=outcome,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=_elapsed_ms(started),
            error=error,
            fallback_from=sent.fallback_from,
        )
    yield from parsed
    yield StreamEnd(
        finish_reason=finish_reason,
        deployment=name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=sent.deployment.cost(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        fallback_from=sent.fallback_from,
    )
