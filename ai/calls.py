"""One call to Azure OpenAI as the rest of the app makes it: sent through the client (limiter,
retries, breaker, fallback) and recorded as one UsageRecord whatever its outcome. Chat, the
streamed chat, structured calls and the deployment check all go through `call_send`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ai.client import Sent, chat_send
from ai.config import Deployment, deployment_get
from ai.errors import AIError
from ai.models import UsageRecord


@dataclass(frozen=True)
class CallContext:
    """Who a call is for and why; stored on its usage record."""

    purpose: str = "other"
    user_id: int | None = None
    job_id: int | None = None
    chat_session_id: int | None = None
    # A caller making many calls at once (a job's runner) may save their records together: each
    # record, validated and not saved, is handed here instead of one INSERT per call.
    record_to: Callable[[UsageRecord], None] | None = field(default=None, compare=False, repr=False)


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
    # The user is not looked up again (a query per call): the foreign key's constraint holds.
    record.full_clean(exclude=["user"], validate_unique=False, validate_constraints=False)
    if context.record_to is not None:
        context.record_to(record)
    else:
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


@dataclass
class Call:
    """A request the service accepted, while its caller reads the answer.

    The caller sets `usage` once the answer reports it; an AIError raised inside the `with`
    becomes the call's outcome.
    """

    sent: Sent
    usage: Any = None

    @property
    def deployment(self) -> Deployment:
        return self.sent.deployment

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens if self.usage else 0

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens if self.usage else 0

    @property
    def cost(self) -> Decimal:
        return self.deployment.cost(
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens
        )


@contextmanager
def call_send(
    *,
    messages: list[dict[str, Any]],
    context: CallContext,
    max_tokens: int,
    deployment: str | Deployment | None = None,
    params: dict[str, Any] | None = None,
    stream: bool = False,
    max_wait: float | None = None,
    attempts: int | None = None,
    use_fallback: bool = True,
) -> Iterator[Call]:
    """Send one chat completion and record its usage once, however it ends.

    A call the service never accepted is recorded with the error's outcome and the error raised
    here; otherwise the body reads `call.sent.response`, and on leaving the limiter's charge is
    settled from `call.usage` and the usage recorded (an AIError from the body is its outcome; a
    stream its reader closed early, GeneratorExit, is "stopped").
    """
    started = time.monotonic()
    target = deployment_get(deployment) if isinstance(deployment, str) else deployment
    try:
        sent = chat_send(
            messages=messages,
            max_tokens=max_tokens,
            deployment=target,
            stream=stream,
            params=params or {},
            max_wait=max_wait,
            attempts=attempts,
            use_fallback=use_fallback,
        )
    except AIError as exc:
        _record_failure(context, exc, started)
        raise
    call = Call(sent=sent)
    outcome, error = UsageRecord.Outcome.OK, ""
    try:
        yield call
    except AIError as exc:
        outcome, error = exc.outcome, exc.message
        raise
    except GeneratorExit:
        # A streamed reply closed by its reader before the end: stopped, not failed.
        outcome, error = UsageRecord.Outcome.STOPPED, "The caller stopped reading the stream."
        raise
    except BaseException as exc:
        outcome, error = UsageRecord.Outcome.ERROR, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        sent.settle(prompt_tokens=call.usage.prompt_tokens if call.usage else None)
        usage_record_create(
            context=context,
            deployment=sent.deployment,
            outcome=outcome,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            latency_ms=_elapsed_ms(started),
            error=error,
            fallback_from=sent.fallback_from,
        )
