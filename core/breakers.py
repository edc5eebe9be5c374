"""Circuit breakers whose state lives in Redis, so every web and worker process agrees.

pybreaker does the state machine (closed → open after `fail_max` failures → half-open after
`reset_timeout` → closed on a success). Two of its traits shape how callers use it:
- `breaker.call(fn)` holds a lock for the whole call, so concurrent calls through one breaker run
  one at a time. Use `with breaker.calling(): ...` instead, which does not serialise.
- With Redis down at construction, `CircuitRedisStorage` raises; later Redis errors are swallowed
  (and, with redis-py's default retries, each call then took seconds). The client here never
  retries and times out fast, and a breaker built while Redis is down falls back to memory.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

import pybreaker
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)


@functools.cache
def _breaker_redis(url: str) -> redis.Redis:
    # pybreaker's storage needs bytes back (decode_responses=False).
    return redis.Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )


class _LogListener(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state, new_state) -> None:
        logger.warning(
            "circuit breaker %s: %s → %s",
            cb.name,
            getattr(old_state, "name", old_state),
            getattr(new_state, "name", new_state),
        )


_breakers: dict[tuple, pybreaker.CircuitBreaker] = {}


def redis_breaker(
    name: str,
    *,
    fail_max: int = 5,
    reset_timeout: float = 30,
    exclude: Iterable = (),
) -> pybreaker.CircuitBreaker:
    """The process's breaker called `name`, its state shared through Redis.

    `exclude` lists exceptions (or predicates) that are the caller's fault, not the service's,
    and so never count as failures (a 404, a validation error).
    """
    key = (settings.REDIS_URL, settings.REDIS_PREFIX, name, fail_max, reset_timeout)
    breaker = _breakers.get(key)
    if breaker is not None:
        return breaker
    try:
        storage: pybreaker.CircuitBreakerStorage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED,
            _breaker_redis(settings.REDIS_URL),
            namespace=f"{settings.REDIS_PREFIX}:breaker:{name}",
        )
    except redis.RedisError:
        # Not cached: the next call tries Redis again.
        logger.warning("Redis unreachable: breaker %s keeps its state in this process", name)
        return pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout, exclude=list(exclude), name=name
        )
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout,
        exclude=list(exclude),
        listeners=[_LogListener()],
        state_storage=storage,
        name=name,
    )
    _breakers[key] = breaker
    return breaker
