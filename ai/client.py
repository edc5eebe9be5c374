"""Sending one chat completion to Azure OpenAI: the one client, our retries, the fallback.

Layers, outermost first:
- fallback: when the primary is unavailable (breaker open, outages or 429s outlasting our
  attempts), the same request goes to AZURE_OPENAI_FALLBACK_DEPLOYMENT if one is configured;
- retries (`backoff`): 408, 409, 429, 5xx, timeouts and connection errors, full-jitter exponential
  waits, a retry-after honoured through the shared limiter, a clean give-up (ThrottledError with
  `retry_after`) when the wait would outlast what the caller allows;
- per attempt (ai/quota.py): the deployment's breaker is checked first (a refused call takes no
  limiter slot), then the shared limiters admit it, then the breaker guards the request itself;
- on the HTTP client's hooks, the last thing before a request leaves and the first after an
  answer arrives: a request finds the deployment paused since it was admitted (another call's
  429) and waits the pause out without being sent, and a 429's retry-after pauses the
  deployment for every process before the answer is even parsed. So no request is sent inside
  a window a 429 announced once that 429 was received.

The package's own retries are off (`max_retries=0`) so retries do not multiply. With Redis (the
limiters' home) down, a call fails closed with a retryable UnavailableError: no process may
send requests the others cannot count.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import backoff
import openai
import pybreaker
import redis
from django.conf import settings

from ai.config import Deployment, deployment_get, fallback_for
from ai.errors import (
    ContentFilterError,
    ContextLengthError,
    CredentialsError,
    DeploymentNotFoundError,
    RequestRejectedError,
    RetryableError,
    RunError,
    ThrottledError,
    UnavailableError,
)
from ai.quota import (
    QuotaPaused,
    ahold_if_paused,
    apause_on_refusal,
    deployment_breaker,
    deployment_limiters,
    hold_if_paused,
    pause_on_refusal,
    quota_acquire,
    quota_answered,
    quota_settle,
    retry_after_of,
)
from ai.tokens import count_messages
from core.breakers import seconds_until_trial
from core.ratelimit import Reservation

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_CONNECT_TIMEOUT = 5.0
# The longest backoff step, in seconds (the package's own figure).
_BACKOFF_CAP = 8.0


# --- The client -------------------------------------------------------------------------------


def openai_client(*, asynchronous: bool = False) -> openai.AzureOpenAI | openai.AsyncAzureOpenAI:
    """The process's Azure OpenAI client for the configured endpoint, key and api-version."""
    if not settings.AZURE_OPENAI_ENDPOINT:
        raise RunError(
            "AZURE_OPENAI_ENDPOINT is not set. Set it to your resource's endpoint, e.g. "
            "https://<resource>.openai.azure.com (Azure portal → your Azure OpenAI resource → "
            "Keys and Endpoint)."
        )
    return _client(
        settings.AZURE_OPENAI_ENDPOINT,
        settings.AZURE_OPENAI_API_KEY,
        settings.AZURE_OPENAI_API_VERSION,
        float(settings.AZURE_OPENAI_TIMEOUT),
        asynchronous,
    )


@functools.cache
def _client(
    endpoint: str, api_key: str, api_version: str, timeout: float, asynchronous: bool
) -> openai.AzureOpenAI | openai.AsyncAzureOpenAI:
    if asynchronous:
        cls = openai.AsyncAzureOpenAI
        http_client = openai.DefaultAsyncHttpxClient(
            event_hooks={"request": [ahold_if_paused], "response": [apause_on_refusal]}
        )
    else:
        cls = openai.AzureOpenAI
        http_client = openai.DefaultHttpxClient(
            event_hooks={"request": [hold_if_paused], "response": [pause_on_refusal]}
        )
    return cls(
        azure_endpoint=endpoint,
        api_key=api_key,
        api_version=api_version,
        max_retries=0,
        timeout=openai.Timeout(timeout, connect=_CONNECT_TIMEOUT),
        http_client=http_client,
    )


# A forked child (Celery prefork, multiprocessing) must not share the parent's HTTP connections.
os.register_at_fork(after_in_child=_client.cache_clear)


# --- One request ------------------------------------------------------------------------------


@dataclass
class Sent:
    """A request the service accepted: the parsed response (a completion or a stream) and what
    is needed to settle its charge once the usage is known."""

    deployment: Deployment
    response: Any
    headers: Mapping[str, str]
    max_tokens: int
    fallback_from: str = ""
    _reservations: tuple[Reservation, Reservation] | None = field(default=None, repr=False)

    def settle(self, *, prompt_tokens: int | None) -> None:
        """Correct the limiter's charge from the reported usage and the service's own count."""
        if self._reservations is not None:
            quota_settle(
                deployment=self.deployment,
                reservations=self._reservations,
                headers=self.headers,
                reported_prompt=prompt_tokens,
                max_tokens=self.max_tokens,
            )
            self._reservations = None


class _Transient(Exception):
    """An attempt that may succeed if repeated; turned into a RetryableError when we give up."""

    def __init__(self, error: RetryableError) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = error.retry_after


def is_reasoning_model(model: str) -> bool:
    """o-series and gpt-5 take max_completion_tokens and no temperature/top_p."""
    base = model.lower()
    return base.startswith("gpt-5") or (len(base) > 1 and base[0] == "o" and base[1].isdigit())


def chat_send(
    *,
    messages: list[dict[str, Any]],
    max_tokens: int,
    deployment: Deployment | None = None,
    stream: bool = False,
    params: Mapping[str, Any] | None = None,
    max_wait: float | None = None,
    attempts: int | None = None,
    use_fallback: bool = True,
) -> Sent:
    """Send one chat completion through the limiter, retries, breaker and fallback.

    `params` go to `chat.completions.create` as they are (tools, tool_choice, response_format,
    temperature). Raises an AIError subclass saying what the caller should do.
    """
    primary = deployment or deployment_get()
    try:
        return _send_retrying(
            primary, messages, max_tokens, stream, params or {}, max_wait, attempts
        )
    except RetryableError as exc:
        fallback = fallback_for(primary) if use_fallback else None
        if fallback is None:
            raise
        logger.warning(
            "Azure OpenAI deployment %s is unavailable (%s); sending to the fallback %s",
            primary.name,
            exc.message,
            fallback.name,
        )
        sent = _send_retrying(
            fallback, messages, max_tokens, stream, params or {}, max_wait, attempts
        )
        sent.fallback_from = primary.name
        return sent


def _send_retrying(
    deployment: Deployment,
    messages: list[dict[str, Any]],
    max_tokens: int,
    stream: bool,
    params: Mapping[str, Any],
    max_wait: float | None,
    attempts: int | None,
) -> Sent:
    max_wait = float(settings.AZURE_OPENAI_MAX_WAIT if max_wait is None else max_wait)
    attempts = int(settings.AZURE_OPENAI_MAX_ATTEMPTS if attempts is None else attempts)
    deadline = time.monotonic() + max_wait
    prompt_tokens = count_messages(
        messages,
        model=deployment.model,
        tools=params.get("tools"),
        response_format=params.get("response_format"),
    )
    cost = prompt_tokens + max_tokens
    tokens_limit = deployment_limiters(deployment)[1].limit
    if cost > tokens_limit:
        raise ContextLengthError(
            f"This request needs about {prompt_tokens} prompt tokens + {max_tokens} max_tokens = "
            f"{cost}, more than the deployment {deployment.name!r} may use in a minute "
            f"({tokens_limit} TPM). Shorten the prompt or lower max_tokens.",
            deployment=deployment.name,
        )
    kwargs = dict(params)
    if is_reasoning_model(deployment.model):
        # A fallback may be a reasoning model where the primary is not: it refuses these.
        kwargs.pop("temperature", None)
        kwargs.pop("top_p", None)
        kwargs["max_completion_tokens"] = max_tokens
    else:
        kwargs["max_tokens"] = max_tokens
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    breaker = deployment_breaker(deployment)

    def attempt() -> Sent:
        reservations = None
        try:
            if seconds_until_trial(breaker) > 0:
                raise _breaker_open(deployment)
            # The client first: time between being admitted and sending is time the service
            # may count in a different window than we did.
            create = openai_client().chat.completions.with_raw_response.create
            while True:
                reservations = quota_acquire(
                    deployment=deployment, cost=cost, deadline=deadline, max_wait=max_wait
                )
                try:
                    with breaker.calling():
                        raw = create(model=deployment.name, messages=messages, **kwargs)
                except pybreaker.CircuitBreakerError as exc:
                    raise _breaker_open(deployment) from exc
                except (QuotaPaused, openai.APIConnectionError) as exc:
                    # The hooks' errors arrive as they are or wrapped, by package version.
                    cause = exc if isinstance(exc, QuotaPaused) else exc.__cause__
                    if isinstance(cause, redis.RedisError):
                        raise cause from exc
                    if not isinstance(cause, QuotaPaused):
                        reservations = quota_answered(reservations)
                        raise _failed(deployment, exc, reservations) from exc
                    # Paused by another call's 429 since we were admitted; nothing was sent.
                    # Give the slot back: acquiring again waits the pause out (or gives up
                    # past the deadline). Not an attempt: the service saw nothing.
                    reservations[0].adjust(0)
                    reservations[1].adjust(0)
                    continue
                except openai.APIStatusError as exc:
                    reservations = quota_answered(reservations)
                    raise _failed(deployment, exc, reservations) from exc
                break
            reservations = quota_answered(reservations)
        except redis.RedisError as exc:
            logger.warning("Redis unreachable, Azure OpenAI request not sent: %s", exc)
            raise UnavailableError(
                "Redis, which holds the shared Azure OpenAI quota, does not answer, so no "
                f"request goes to deployment {deployment.name!r}. Try again in a moment.",
                deployment=deployment.name,
            ) from exc
        return Sent(
            deployment=deployment,
            response=raw.parse(),
            headers=dict(raw.headers),
            max_tokens=max_tokens,
            _reservations=reservations,
        )

    def too_long(exc: _Transient) -> bool:
        return exc.retry_after is not None and exc.retry_after > deadline - time.monotonic()

    retrying = backoff.on_exception(
        _wait_times,
        _Transient,
        max_tries=attempts,
        max_time=max_wait,
        giveup=too_long,
        jitter=None,  # _wait_times jitters itself
        on_backoff=_log_backoff,
        # Giving up is expected (the caller gets a RetryableError), not an ERROR.
        giveup_log_level=logging.INFO,
    )(attempt)
    try:
        return retrying()
    except _Transient as exc:
        raise exc.error from exc.__cause__


def _breaker_open(deployment: Deployment) -> UnavailableError:
    wait = seconds_until_trial(deployment_breaker(deployment))
    wait = wait or float(settings.AZURE_OPENAI_BREAKER_RESET_TIMEOUT)
    return UnavailableError(
        f"Azure OpenAI deployment {deployment.name!r} keeps failing, so calls to it are paused "
        f"for another {wait:.0f}s (circuit breaker open). Try again later.",
        deployment=deployment.name,
        retry_after=wait,
    )


def _wait_times() -> Iterator[float | None]:
    """Seconds before the next attempt; backoff sends in the exception that failed the last."""
    exc = yield None
    base = float(settings.AZURE_OPENAI_BACKOFF_BASE)
    n = 0
    while True:
        if exc.retry_after is not None:
            # The shared limiter is paused for retry_after already (acquire waits it out in
            # every process); a little jitter keeps the processes from waking all at once.
            wait = random.uniform(0, min(0.25, exc.retry_after / 10))
        else:
            wait = random.uniform(0, min(_BACKOFF_CAP, base * 2**n))
        n += 1
        exc = yield wait


def _log_backoff(details: dict[str, Any]) -> None:
    logger.info(
        "Azure OpenAI attempt %s failed (%s); retrying in %.2fs",
        details["tries"],
        details["exception"],
        details["wait"],
    )


def _failed(
    deployment: Deployment,
    exc: openai.APIStatusError | openai.APIConnectionError,
    reservations: tuple[Reservation, Reservation] | None,
) -> Exception:
    """The error the caller acts on (an AIError), or a _Transient to retry."""
    name = deployment.name
    endpoint = settings.AZURE_OPENAI_ENDPOINT
    if isinstance(exc, openai.APITimeoutError):
        return _Transient(
            UnavailableError(
                f"Azure OpenAI deployment {name!r} did not answer within "
                f"{settings.AZURE_OPENAI_TIMEOUT:g}s.",
                deployment=name,
            )
        )
    if isinstance(exc, openai.APIConnectionError):
        return _Transient(
            UnavailableError(
                f"Cannot reach Azure OpenAI at {endpoint} ({exc.__cause__ or exc}). Check "
                "AZURE_OPENAI_ENDPOINT and the network.",
                deployment=name,
            )
        )
    status = exc.status_code
    headers = exc.response.headers
    code = str(exc.code or "")
    detail = _message(exc)
    if status in (401, 403):
        return CredentialsError(
            f"Azure OpenAI at {endpoint} refused the credentials for deployment {name!r} "
            f"({status}: {detail}). Check that AZURE_OPENAI_API_KEY is a key of this resource "
            "(Azure portal → the resource → Keys and Endpoint) and that AZURE_OPENAI_ENDPOINT is "
            "that resource's endpoint.",
            deployment=name,
        )
    if status == 404:
        return DeploymentNotFoundError(
            f"Azure OpenAI at {endpoint} has no deployment named {name!r} (404 {code or ''}: "
            f"{detail}). Check the deployment name in Azure AI Foundry → Deployments — it is the "
            "name you gave the deployment, not the model's — and AZURE_OPENAI_ENDPOINT and "
            f"AZURE_OPENAI_API_VERSION ({settings.AZURE_OPENAI_API_VERSION}).",
            deployment=name,
        )
    if status == 400 and code == "content_filter":
        return ContentFilterError(
            f"Azure OpenAI's content filter blocked the prompt ({detail}). Change this item's "
            "text or the prompt.",
            deployment=name,
            where="prompt",
        )
    if status == 400 and code == "context_length_exceeded":
        return ContextLengthError(
            f"The prompt is too long for deployment {name!r} ({detail}). Shorten the text or "
            "lower max_tokens.",
            deployment=name,
        )
    # A 429's pause was set by pause_on_refusal when its headers arrived.
    retry_after = retry_after_of(headers)
    if reservations is not None and status == 429:
        reservations[1].adjust(0)  # a refused request is not charged
    retryable = status in _RETRYABLE_STATUS or status >= 500
    if headers.get("x-should-retry") == "false":
        retryable = False
    if retryable:
        kind = ThrottledError if status == 429 else UnavailableError
        return _Transient(
            kind(
                f"Azure OpenAI deployment {name!r} answered {status} ({detail}).",
                deployment=name,
                retry_after=retry_after,
            )
        )
    return RequestRejectedError(
        f"Azure OpenAI deployment {name!r} rejected the request ({status} {code}: {detail}).",
        deployment=name,
    )


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    return exc.message
