"""The shared limiters and the breaker of each deployment, and settling a request's charge.

Both belong to one endpoint and deployment: a command run against a wrong endpoint trips its own
breaker, never the one the running app uses, and two resources' quotas never mix.

- limiters (Redis): requests per short window (Azure enforces RPM per 10 s) and tokens per
  minute, each request charged its prompt + max_tokens before it is sent, corrected once its
  usage is known. A 429's retry-after pauses the deployment for every process the moment its
  headers arrive (`quota_pause`), and every request checks for a pause once more as the last
  step before it leaves (`quota_gate`): one admitted earlier never goes out inside the window.
- breaker (Redis state): counts outages only (5xx, timeouts, connection errors).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import Mapping

import httpx
import openai
import pybreaker
import redis
from django.conf import settings

from ai.config import Deployment
from ai.errors import ThrottledError
from core.breakers import redis_breaker
from core.ratelimit import (
    Reservation,
    SlidingWindowLimiter,
    acquire_together,
    restamp_together,
    usage_together,
)

logger = logging.getLogger(__name__)

_WINDOW_MARGIN = 1.05


def _endpoint_key() -> str:
    endpoint = settings.AZURE_OPENAI_ENDPOINT.rstrip("/").lower()
    return hashlib.sha256(endpoint.encode()).hexdigest()[:12]


class QuotaPaused(Exception):
    """Raised as the last step before sending: a 429 paused the deployment since this request
    was admitted. Nothing was sent; the caller waits the pause out and asks again."""

    def __init__(self, deployment: str, wait: float) -> None:
        super().__init__(f"deployment {deployment!r} is paused for another {wait:.2f}s")
        self.wait = wait


def _requests_limiter_name(deployment_name: str) -> str:
    return f"azure-openai:{_endpoint_key()}:{deployment_name}:requests"


def _pause_keeper(deployment_name: str) -> SlidingWindowLimiter:
    # The requests limiter's keys; its limit plays no part in a pause or the gate.
    return SlidingWindowLimiter(_requests_limiter_name(deployment_name), 1)


def quota_gate(*, deployment_name: str) -> float:
    """Let a request go now unless the deployment is paused (raise QuotaPaused).

    Returns the moment it passed, on Redis's clock. The check and a pause are one Redis script
    each, so a request that passes went out before any pause set after a 429 was received.
    """
    sent_at, wait = _pause_keeper(deployment_name).gate()
    if sent_at is None:
        raise QuotaPaused(deployment_name, wait)
    return sent_at


def quota_pause(*, deployment_name: str, seconds: float) -> tuple[float, float] | None:
    """Send nothing to the deployment for `seconds`, from every process; (start, end) of the
    pause on Redis's clock, None when there is none."""
    return _pause_keeper(deployment_name).pause(seconds)


def deployment_limiters(
    deployment: Deployment,
) -> tuple[SlidingWindowLimiter, SlidingWindowLimiter]:
    """(requests per short window, tokens per minute) for the deployment, shared via Redis."""
    window = float(settings.AZURE_OPENAI_RPM_WINDOW)
    per_window = max(1, math.ceil(deployment.rpm * window / 60))
    name = f"azure-openai:{_endpoint_key()}:{deployment.name}"
    # Windows a little longer than the service's: a request admitted here arrives there a few ms
    # later, and one that travels faster than the request it follows would land in a window the
    # service still counts as full.
    return (
        SlidingWindowLimiter(
            _requests_limiter_name(deployment.name), per_window, window * _WINDOW_MARGIN
        ),
        SlidingWindowLimiter(f"{name}:tokens", deployment.tpm, 60.0 * _WINDOW_MARGIN),
    )


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError) and isinstance(
        exc.__cause__, QuotaPaused | redis.RedisError
    ):
        return False  # stopped on our side before anything was sent
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def deployment_breaker(deployment: Deployment) -> pybreaker.CircuitBreaker:
    # Only outages count: a 429 means the service is up and busy, a 4xx is about the request.
    return redis_breaker(
        f"azure-openai:{_endpoint_key()}:{deployment.name}",
        fail_max=int(settings.AZURE_OPENAI_BREAKER_FAIL_MAX),
        reset_timeout=float(settings.AZURE_OPENAI_BREAKER_RESET_TIMEOUT),
        exclude=[lambda exc: not is_outage(exc)],
    )


def quota_acquire(
    *, deployment: Deployment, cost: int, deadline: float, max_wait: float
) -> tuple[Reservation, Reservation]:
    """A request slot and `cost` tokens, waiting (not past the deadline) for both at once.

    Holding one while waiting for the other would starve other processes, so both are admitted
    in one step (one Redis script) or neither.
    """
    requests_limiter, tokens_limiter = deployment_limiters(deployment)
    while True:
        both, wait = acquire_together([(requests_limiter, 1), (tokens_limiter, cost)])
        if both is not None:
            return both[0], both[1]
        if time.monotonic() + wait > deadline:
            raise ThrottledError(
                f"Azure OpenAI deployment {deployment.name!r} is at its quota: the next free slot "
                f"is in {wait:.1f}s, later than this call waits ({max_wait:g}s). Try again later.",
                deployment=deployment.name,
                retry_after=wait,
            )
        time.sleep(wait)


def quota_answered(
    reservations: tuple[Reservation, Reservation],
) -> tuple[Reservation, Reservation]:
    """Count a request in our windows from the moment its answer (or failure) came back.

    See Reservation.count_from_now: the service counted it on arrival, which lies before. The
    answer is in the caller's hands, so Redis going away here costs the correction only.
    """
    try:
        request, tokens = restamp_together(reservations)
        return request, tokens
    except redis.RedisError as exc:
        logger.warning("Redis unreachable: a request's window time not corrected (%s)", exc)
        return reservations


def corrected_charge(
    *,
    charged: int,
    reported_prompt: int | None,
    max_tokens: int,
    our_used: int,
    service_used: int | None,
) -> int:
    """What a request should weigh in our token window once its response is in.

    Azure's TPM counter keeps the estimate it charged on arrival (prompt + max_tokens), so the
    prompt part is corrected from the reported usage and max_tokens stays. When the service's
    headers show it has counted more than we have (another client on the same quota, an estimate
    of ours that ran low), the difference is added so we slow down with it.
    """
    cost = charged if reported_prompt is None else reported_prompt + max_tokens
    if service_used is not None:
        # our_used still holds this request at `charged`.
        drift = service_used - (our_used - charged + cost)
        cost += max(0, drift)
    return max(0, cost)


def quota_settle(
    *,
    deployment: Deployment,
    reservations: tuple[Reservation, Reservation],
    headers: Mapping[str, str],
    reported_prompt: int | None,
    max_tokens: int,
) -> None:
    """Correct the charge of an answered request. The answer is in the caller's hands already,
    so Redis going away here costs a correction, never the answer."""
    try:
        _settle(deployment, reservations, headers, reported_prompt, max_tokens)
    except redis.RedisError as exc:
        logger.warning(
            "Redis unreachable: charge of a %s call not corrected (%s)", deployment.name, exc
        )


def _settle(
    deployment: Deployment,
    reservations: tuple[Reservation, Reservation],
    headers: Mapping[str, str],
    reported_prompt: int | None,
    max_tokens: int,
) -> None:
    requests_limiter, tokens_limiter = deployment_limiters(deployment)
    tokens = reservations[1]
    service_used = None
    with contextlib.suppress(KeyError, ValueError):
        service_used = int(headers["x-ratelimit-limit-tokens"]) - int(
            headers["x-ratelimit-remaining-tokens"]
        )
    service_remaining = None
    with contextlib.suppress(KeyError, ValueError):
        service_remaining = int(headers["x-ratelimit-remaining-requests"])
    # Both windows' usage in one round trip, when the headers give something to compare.
    compared = [
        limiter
        for limiter, known in (
            (tokens_limiter, service_used is not None),
            (requests_limiter, service_remaining is not None),
        )
        if known
    ]
    used = dict(zip(map(id, compared), usage_together(compared), strict=True))
    cost = corrected_charge(
        charged=tokens.cost,
        reported_prompt=reported_prompt,
        max_tokens=max_tokens,
        our_used=used.get(id(tokens_limiter), 0),
        service_used=service_used,
    )
    cost = min(cost, tokens_limiter.limit)
    if cost != tokens.cost:
        tokens.adjust(cost)
    # Fewer requests left in the service's window than in ours: someone else shares the quota.
    # Take the difference out of our window too, rather than collect 429s.
    if service_remaining is not None:
        gap = requests_limiter.limit - used[id(requests_limiter)] - service_remaining
        if gap > 0:
            requests_limiter.try_acquire(gap)


# --- The HTTP client's hooks (ai/client.py installs them) ----------------------------------


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """Seconds the service asked us to wait: retry-after-ms first, then retry-after."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


_DEPLOYMENT_IN_PATH = re.compile(r"/openai/deployments/([^/]+)/")


def _deployment_named(request: httpx.Request) -> str | None:
    match = _DEPLOYMENT_IN_PATH.search(request.url.path)
    return match.group(1) if match else None


def hold_if_paused(request: httpx.Request) -> None:
    """The last step before a request leaves: raise QuotaPaused (the package wraps it in an
    APIConnectionError; ai/client.py waits and sends again) if a 429 paused the deployment since
    the request was admitted. `workbench.sent_at` notes when it passed (Redis's clock)."""
    name = _deployment_named(request)
    if name is not None:
        request.extensions["workbench.sent_at"] = quota_gate(deployment_name=name)
        # Azure's correlation header: it names the request in the service's logs (and ours).
        request.headers["x-ms-client-request-id"] = str(uuid.uuid4())


def pause_on_refusal(response: httpx.Response) -> None:
    """A 429 (or a 5xx with retry-after) pauses the deployment as soon as its headers are in,
    before the package parses it: every request that checks the gate from now on waits.
    `workbench.paused` notes the pause's (start, end) on the request (Redis's clock)."""
    status = response.status_code
    retry_after = retry_after_of(response.headers)
    if not (status == 429 or (retry_after is not None and status >= 500)):
        return
    name = _deployment_named(response.request)
    if name is None:
        return
    try:
        pause = quota_pause(
            deployment_name=name, seconds=retry_after if retry_after is not None else 1.0
        )
    except redis.RedisError as exc:  # the answer still reaches the caller, who retries
        logger.warning("Redis unreachable: a 429 from %s paused nobody (%s)", name, exc)
        return
    response.request.extensions["workbench.paused"] = pause


async def ahold_if_paused(request: httpx.Request) -> None:
    hold_if_paused(request)


async def apause_on_refusal(response: httpx.Response) -> None:
    pause_on_refusal(response)
