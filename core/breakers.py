"""Circuit breakers whose state lives in Redis, so every web and worker process agrees.

pybreaker does the state machine (closed → open after `fail_max` failures → half-open after
`reset_timeout` → closed on a success). Traits that shape how callers use it:
- `breaker.call(fn)` holds a lock for the whole call, so concurrent calls through one breaker run
  one at a time. Use `with breaker.calling(): ...` instead, which does not serialise.
- An excluded exception counts as a *success*. So nothing that is not the service's answer
  (waiting for a limiter slot, say) belongs inside `calling()`: check `seconds_until_trial()`
  first, wait for the limiter, then enter `calling()` for the request alone.
- pybreaker's own `CircuitRedisStorage` raises when Redis is down at construction and swallows
  every later Redis error (the breaker then cannot trip). `_FailoverStorage` below keeps the
  state in Redis while Redis answers and in this process while it does not, switching back to
  the shared state by itself on the first operation Redis answers again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import pybreaker
import redis
from django.conf import settings

from core.redis import fail_fast_redis

logger = logging.getLogger(__name__)


class _FailoverStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker state in Redis (shared by every process) or, while Redis is down, in memory.

    Each operation tries Redis first (the client never retries and times out in half a second),
    so the breaker returns to the shared state as soon as Redis answers again; what happened
    meanwhile stays local to this process.
    """

    def __init__(self, url: str, namespace: str) -> None:
        super().__init__("redis-or-memory")
        self._url = url
        self._keys = {
            key: f"{namespace}:{key}"
            for key in ("state", "fail_counter", "success_counter", "opened_at")
        }
        self._memory = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._degraded = False
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while the state is kept in this process because Redis did not answer."""
        return self._degraded

    def _redis(self, operation, fallback):
        try:
            result = operation(fail_fast_redis(self._url))
        except redis.RedisError as exc:
            with self._lock:
                if not self._degraded:
                    logger.warning(
                        "Redis unreachable (%s): breaker %s keeps its state in this process",
                        exc,
                        self._keys["state"],
                    )
                self._degraded = True
            return fallback()
        with self._lock:
            if self._degraded:
                logger.warning("Redis is back: breaker %s shares its state", self._keys["state"])
            self._degraded = False
        return result

    @property
    def state(self) -> str:
        def read(r: redis.Redis) -> str:
            value = r.get(self._keys["state"])
            # Missing after a Redis restart without persistence: nobody has seen failures.
            return value.decode() if value else pybreaker.STATE_CLOSED

        return self._redis(read, lambda: self._memory.state)

    @state.setter
    def state(self, state: str) -> None:
        self._memory.state = state
        self._redis(lambda r: r.set(self._keys["state"], str(state)), lambda: None)

    def increment_counter(self) -> None:
        self._memory.increment_counter()
        self._redis(lambda r: r.incr(self._keys["fail_counter"]), lambda: None)

    def reset_counter(self) -> None:
        self._memory.reset_counter()
        self._redis(lambda r: r.set(self._keys["fail_counter"], 0), lambda: None)

    def increment_success_counter(self) -> None:
        self._memory.increment_success_counter()
        self._redis(lambda r: r.incr(self._keys["success_counter"]), lambda: None)

    def reset_success_counter(self) -> None:
        self._memory.reset_success_counter()
        self._redis(lambda r: r.set(self._keys["success_counter"], 0), lambda: None)

    @property
    def counter(self) -> int:
        return self._redis(
            lambda r: int(r.get(self._keys["fail_counter"]) or 0), lambda: self._memory.counter
        )

    @property
    def success_counter(self) -> int:
        return self._redis(
            lambda r: int(r.get(self._keys["success_counter"]) or 0),
            lambda: self._memory.success_counter,
        )

    @property
    def opened_at(self) -> datetime | None:
        def read(r: redis.Redis) -> datetime | None:
            value = r.get(self._keys["opened_at"])
            return datetime.fromtimestamp(float(value), UTC) if value else None

        return self._redis(read, lambda: self._memory.opened_at)

    @opened_at.setter
    def opened_at(self, when: datetime) -> None:
        self._memory.opened_at = when
        self._redis(lambda r: r.set(self._keys["opened_at"], when.timestamp()), lambda: None)


class _LogListener(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state, new_state) -> None:
        logger.warning(
            "circuit breaker %s: %s → %s",
            cb.name,
            getattr(old_state, "name", old_state),
            getattr(new_state, "name", new_state),
        )


_breakers: dict[tuple, pybreaker.CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def redis_breaker(
    name: str,
    *,
    fail_max: int = 5,
    reset_timeout: float = 30,
    exclude: Iterable = (),
) -> pybreaker.CircuitBreaker:
    """The process's breaker called `name`, its state shared through Redis while Redis answers.

    `exclude` lists exceptions (or predicates) that are the caller's fault, not the service's,
    and so never count as failures (a 404, a validation error). The same breaker object comes
    back on every call in this process, Redis up or down.
    """
    key = (settings.REDIS_URL, settings.REDIS_PREFIX, name, fail_max, reset_timeout)
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                exclude=list(exclude),
                listeners=[_LogListener()],
                state_storage=_FailoverStorage(
                    settings.REDIS_URL, f"{settings.REDIS_PREFIX}:breaker:{name}"
                ),
                name=name,
            )
            _breakers[key] = breaker
    return breaker


def seconds_until_trial(breaker: pybreaker.CircuitBreaker) -> float:
    """0 when the breaker lets a call through now; else the seconds until it half-opens."""
    if breaker.current_state != pybreaker.STATE_OPEN:
        return 0.0
    opened_at = breaker._state_storage.opened_at  # pybreaker has no public accessor
    if opened_at is None:
        return 0.0
    # pybreaker's own clock, so both agree on when the breaker half-opens.
    elapsed = (datetime.now(UTC) - opened_at).total_seconds()
    return max(0.0, float(breaker.reset_timeout) - elapsed)
