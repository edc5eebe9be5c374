"""One assistant reply: the model and the tools take turns until it answers in words.

Each model call is streamed; text goes to the session's group as it arrives (coalesced to a
push every PUSH_INTERVAL, the first at once) and is saved every CHAT_SAVE_INTERVAL, so a page
opened mid-reply shows what has arrived and a failure keeps it. Tool calls of one reply (several
at once, too) are answered in order; after CHAT_MAX_TOOL_ROUNDS calls that asked for tools the
next must answer without them. Write tools make a ChangeSet and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ai.calls import CallContext
from ai.errors import AIError, ContentFilterError, RetryableError, UnavailableError
from ai.services import StreamEnd, TextDelta, ToolCall, chat_stream
from chat.events import delta_send, message_changed_send
from chat.history import conversation
from chat.markdown import markdown_html
from chat.models import ChangeSet, Message
from chat.tools import Proposal, ToolContext, ToolError, tool_run, tool_specs

logger = logging.getLogger(__name__)

PUSH_INTERVAL = 0.05
# A reply still "streaming" with no save for this long belongs to a worker that died.
ABANDONED_AFTER = timedelta(minutes=2)


class Stopped(Exception):
    """The person pressed Stop."""


class ReplyWriter:
    """The reply being written: its text, tool activity and cost, saved and pushed as it grows."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.text = ""
        self.tool_calls: list[dict[str, Any]] = []
        self.tool_results: list[dict[str, Any]] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = Decimal(0)
        self.pushed_at: float | None = None
        self.saved_at = time.monotonic()

    def add(self, text: str) -> None:
        self.text += text
        now = time.monotonic()
        if self.pushed_at is None or now - self.pushed_at >= PUSH_INTERVAL:
            self.push()
        if now - self.saved_at >= settings.CHAT_SAVE_INTERVAL:
            self.save()

    def push(self) -> None:
        self.pushed_at = time.monotonic()
        delta_send(
            session_id=self.message.session_id,
            message_id=self.message.pk,
            html=markdown_html(self.text),
            length=len(self.text),
        )

    def save(self, **extra: Any) -> None:
        """Save what has arrived; raises Stopped if the person asked to stop meanwhile."""
        self.saved_at = time.monotonic()
        Message.objects.filter(pk=self.message.pk).update(
            content=self.text,
            tool_calls=self.tool_calls,
            tool_results=self.tool_results,
            updated_at=timezone.now(),
            **extra,
        )
        if Message.objects.filter(pk=self.message.pk, stop_requested=True).exists():
            raise Stopped

    def usage(self, end: StreamEnd) -> None:
        self.prompt_tokens += end.prompt_tokens
        self.completion_tokens += end.completion_tokens
        self.cost += end.cost

    def tool_round(self, number: int, calls: list[ToolCall], results: list[str]) -> None:
        for call, result in zip(calls, results, strict=True):
            self.tool_calls.append(
                {"id": call.id, "name": call.name, "arguments": call.arguments, "round": number}
            )
            self.tool_results.append({"tool_call_id": call.id, "content": result})
        self.save()
        message_changed_send(session_id=self.message.session_id, message_id=self.message.pk)

    def finish(self, status: str, error: str = "") -> None:
        if self.text and self.pushed_at is not None:
            self.push()  # the last words before the final render
        with transaction.atomic():
            Message.objects.filter(pk=self.message.pk).update(
                content=self.text,
                tool_calls=self.tool_calls,
                tool_results=self.tool_results,
                status=status,
                error=error,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                cost=self.cost,
                updated_at=timezone.now(),
            )
            message_changed_send(session_id=self.message.session_id, message_id=self.message.pk)


def _claim(message_id: int) -> bool:
    """Take the reply: a pending one, or one whose worker died mid-way (acks_late redelivery)."""
    stale = timezone.now() - ABANDONED_AFTER
    return bool(
        Message.objects.filter(pk=message_id, role=Message.Role.ASSISTANT)
        .filter(
            Q(status=Message.Status.PENDING)
            | Q(status=Message.Status.STREAMING, updated_at__lt=stale)
        )
        .update(status=Message.Status.STREAMING, updated_at=timezone.now())
    )


def tool_answer(*, message: Message, call: ToolCall, context: ToolContext) -> str:
    """Run one tool call; the JSON text the model gets back (a proposal for a write)."""
    try:
        result = tool_run(name=call.name, arguments=call.arguments, context=context)
    except ToolError as exc:
        return json.dumps({"error": {"message": exc.message}}, ensure_ascii=False)
    except Exception:
        logger.exception("tool %s failed", call.name)
        return json.dumps({"error": {"message": f"{call.name} failed unexpectedly; try again."}})
    if isinstance(result, Proposal):
        change_set = ChangeSet.objects.create(
            session_id=message.session_id,
            message=message,
            tool_call_id=call.id,
            tool=call.name,
            sheet_id=result.sheet_id,
            arguments=call.arguments,
            preview=result.preview,
            summary=result.summary[:500],
            outcome={"blocked": result.blocked} if result.blocked else {},
        )
        answer = {
            "change_set_id": change_set.pk,
            "proposal": result.summary,
            "status": "shown to the user, who decides with Apply or Discard; not applied yet",
        }
        if result.blocked:
            answer["status"] = f"shown to the user, but it cannot be applied: {result.blocked}"
        return json.dumps(answer, ensure_ascii=False)
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"), default=str)


def assistant_reply(*, message_id: int) -> None:
    """Write the reply `message_id`; does nothing if it is written or being written already."""
    if not _claim(message_id):
        return
    message = Message.objects.select_related("session__owner", "session__sheet").get(pk=message_id)
    session = message.session
    # No announcement of "writing" here: the first words say it, without a render before them.
    writer = ReplyWriter(message)
    context = CallContext(purpose="chat", user_id=session.owner_id, chat_session_id=session.pk)
    tools_context = ToolContext(user=session.owner)
    try:
        messages = conversation(reply=message)
        tools = tool_specs()
        for number in range(settings.CHAT_MAX_TOOL_ROUNDS + 1):
            last = number == settings.CHAT_MAX_TOOL_ROUNDS
            calls: list[ToolCall] = []
            stream = chat_stream(
                messages=messages,
                context=context,
                tools=tools,
                tool_choice="none" if last else None,
                max_tokens=settings.CHAT_MAX_TOKENS,
            )
            # closing(): a Stop mid-stream closes the HTTP stream at once, not when collected.
            with contextlib.closing(stream):
                for event in stream:
                    if isinstance(event, TextDelta):
                        writer.add(event.text)
                    elif isinstance(event, ToolCall):
                        calls.append(event)
                    elif isinstance(event, StreamEnd):
                        writer.usage(event)
                        if not event.finish_reason:
                            raise UnavailableError(
                                "The reply stream ended without finishing.",
                                deployment=event.deployment,
                            )
            if not calls:
                break
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [c.as_message_part() for c in calls],
                }
            )
            results = [tool_answer(message=message, call=c, context=tools_context) for c in calls]
            messages.extend(
                {"role": "tool", "tool_call_id": c.id, "content": r}
                for c, r in zip(calls, results, strict=True)
            )
            writer.tool_round(number, calls, results)
        writer.finish(Message.Status.COMPLETE)
    except Stopped:
        writer.finish(Message.Status.STOPPED)
    except AIError as exc:
        logger.info("chat reply %s failed: %s", message_id, exc.message)
        writer.finish(Message.Status.ERROR, _error_sentence(exc, writer.text))
    except Exception:
        logger.exception("chat reply %s failed", message_id)
        kept = " What arrived before is kept above." if writer.text else ""
        writer.finish(
            Message.Status.ERROR, "Something went wrong while writing this reply. Retry." + kept
        )


def _error_sentence(exc: AIError, text: str) -> str:
    kept = " What arrived before is kept above." if text else ""
    if isinstance(exc, ContentFilterError):
        return "Azure OpenAI's content filter stopped this reply. Rephrase and retry." + kept
    if isinstance(exc, RetryableError):
        return (
            "The assistant is unavailable or busy right now (Azure OpenAI). Retry in a moment."
            + kept
        )
    return f"The assistant could not answer: {exc.message}" + kept
