"""The calls jobs and chat make: a chat call with tools, a streamed chat call, a structured call
from column descriptions. Each goes through `ai.calls.call_send`, which records its usage once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import openai

from ai.calls import Call, CallContext, call_send
from ai.config import deployment_get
from ai.errors import ContentFilterError, InvalidOutputError, UnavailableError
from ai.schema import Column, response_format_for, values_validate
from ai.tokens import count_messages


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


def _chat_params(
    tools: list[dict[str, Any]] | None,
    tool_choice: str | dict[str, Any] | None,
    temperature: float | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if tools:
        params["tools"] = tools
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if temperature is not None:
        params["temperature"] = temperature
    return params


def _result(call: Call) -> ChatResult:
    """The first choice of a completion as a ChatResult; item errors found here are raised."""
    completion = call.sent.response
    call.usage = completion.usage
    name = call.deployment.name
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
        raise InvalidOutputError(f"The model refused to answer: {message.refusal}", deployment=name)
    calls = [
        ToolCall(
            id=tool_call.id,
            name=tool_call.function.name,
            arguments=_parse_arguments(tool_call.function.name, tool_call.function.arguments, name),
        )
        for tool_call in message.tool_calls or []
    ]
    return ChatResult(
        text=message.content or "",
        tool_calls=calls,
        finish_reason=choice.finish_reason or "",
        deployment=name,
        prompt_tokens=call.prompt_tokens,
        completion_tokens=call.completion_tokens,
        cost=call.cost,
        fallback_from=call.sent.fallback_from,
    )


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
    with call_send(
        messages=messages,
        context=context,
        deployment=deployment,
        max_tokens=max_tokens,
        params=_chat_params(tools, tool_choice, temperature),
        max_wait=max_wait,
    ) as call:
        return _result(call)


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
    with call_send(
        messages=messages,
        context=context,
        deployment=deployment,
        max_tokens=max_tokens,
        params={"response_format": response_format_for(columns)},
        max_wait=max_wait,
    ) as call:
        result = _result(call)
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
    with call_send(
        messages=messages,
        context=context,
        deployment=deployment,
        max_tokens=max_tokens,
        params=_chat_params(tools, tool_choice, temperature),
        stream=True,
        max_wait=max_wait,
    ) as call:
        name = call.deployment.name
        stream = call.sent.response
        calls: dict[int, dict[str, str]] = {}
        finish_reason = ""
        try:
            for chunk in stream:
                if chunk.usage is not None:
                    call.usage = chunk.usage
                # Azure's first chunk carries only prompt_filter_results and no choices.
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        yield TextDelta(delta.content)
                    for part in delta.tool_calls or []:
                        parts = calls.setdefault(
                            part.index, {"id": "", "name": "", "arguments": ""}
                        )
                        if part.id:
                            parts["id"] = part.id
                        if part.function is not None:
                            parts["name"] += part.function.name or ""
                            parts["arguments"] += part.function.arguments or ""
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
        except (openai.APIConnectionError, openai.APIStatusError, httpx.HTTPError) as exc:
            # A connection dropped mid-stream surfaces as httpx's own error, not openai's.
            raise UnavailableError(
                f"The stream from deployment {name!r} broke off ({exc}).", deployment=name
            ) from exc
        finally:
            stream.close()
        if finish_reason == "content_filter":
            raise ContentFilterError(
                "Azure OpenAI's content filter stopped the reply part-way. Change the message.",
                deployment=name,
                where="completion",
            )
        parsed = [
            ToolCall(
                id=parts["id"],
                name=parts["name"],
                arguments=_parse_arguments(parts["name"], parts["arguments"], name),
            )
            for _, parts in sorted(calls.items())
        ]
    yield from parsed
    yield StreamEnd(
        finish_reason=finish_reason,
        deployment=name,
        prompt_tokens=call.prompt_tokens,
        completion_tokens=call.completion_tokens,
        cost=call.cost,
        fallback_from=call.sent.fallback_from,
    )
