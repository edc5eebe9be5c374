"""A rate limiter shared by every process through Redis: a sliding-window log.

Smartsheet allows 300 requests per minute per token, Azure OpenAI N requests and M tokens per
minute per deployment. A token bucket lets up to twice its capacity through in a minute (a full
bucket plus the refill), which real services answer with 429s; a sliding-window log never admits
more than `limit` units in any window, whichever processes ask. Waiting here is cheaper than a 429.

Each admitted request is one member of a sorted set scored by its Redis-server time, carrying its
cost, so a reservation can later be corrected (Azure charges prompt + max_tokens up front; the
reported usage is smaller) and a 429's retry-after can pause everyone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings

# Other modules imported it from here before core/redis.py existed.
from core.redis import fail_fast_redis, redis_client  # noqa: F401

# KEYS: [1] the window's sorted set, [2] the pause-until key.
# ARGV: [1] window ms, [2] limit, [3] cost, [4] member id.
# Returns {0, admission time in ms on Redis's clock} when admitted, else {1, ms to wait}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return {1, paused - now}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do
  used = used + tonumber(string.match(entries[i], '^(%d+)|'))
end
if used + cost <= limit then
  redis.call('ZADD', KEYS[1], now, cost .. '|' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
  return {0, now}
end
-- Wait until enough of the oldest entries have left the window.
local freed = 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], '^(%d+)|'))
  if used - freed + cost <= limit then
    return {1, math.max(1, tonumber(entries[i + 1]) + window - now)}
  end
end
return {1, window}
"""

# KEYS: [1] the window. ARGV: [1] old member, [2] new member. Keeps the original time.
_ADJUST = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[2])
return 1
"""

# KEYS: [1] the window. ARGV: [1] member, [2] window ms. Moves the member to Redis's now, back
# into the window if it had left it (an answer slower than the window). Returns the new time (ms).
_RESTAMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return now
"""

# KEYS: [1] pause-until. ARGV: [1] ms. Only ever extends a pause.
# Returns {its end in ms, now in µs} (µs: a check in the same ms, before or after, is told apart).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return {until_ms, tonumber(t[1]) * 1000000 + tonumber(t[2])}
"""

# KEYS: [1] pause-until. Returns {0, now in µs} when not paused, else {1, µs left in the pause}.
# Atomic with _PAUSE: a request that checks after a pause was set sees it.
_GATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0') * 1000
if paused > now then
  return {1, paused - now}
end
return {0, now}
"""

_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local entries = redis.call('ZRANGE', KEYS[1], 0, -1)
local used = 0
for i = 1, #entries do
  used = used + tonumber(string.match(entries[i], '^(%d+)|'))
end
return used
"""


class RateLimitTimeout(Exception):
    """The limiter would make the caller wait longer than it agreed to."""

    def __init__(self, name: str, wait: float) -> None:
        super().__init__(f"rate limit {name!r}: next slot in {wait:.1f}s, longer than allowed")
        self.wait = wait


@dataclass(frozen=True)
class Reservation:
    limiter: SlidingWindowLimiter
    member: str
    cost: int
    admitted_at: float = 0.0  # seconds, on Redis's clock (the one the window runs on)

    def adjust(self, cost: int) -> Reservation:
        """Correct the charged cost (e.g. from the usage a response reported)."""
        return self.limiter.adjust(self, cost)

    def count_from_now(self) -> Reservation:
        """Count this request in the window from now on: call it when the answer came back.

        The service counts a request when it arrives, some time after we admitted it; with
        latency that varies (a loaded host, a slow network) a request admitted at the edge of
        our window can land inside the service's. Every arrival lies before its answer, so
        counting from the answer keeps our window at least as long as the service's.
        """
        return self.limiter.restamp(self)


class SlidingWindowLimiter:
    """At most `limit` units in any `window` seconds, across every process sharing Redis."""

    def __init__(self, name: str, limit: int, window: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"rate limit {name!r} must allow at least 1 unit, not {limit}")
        self.name = name
        self.limit = int(limit)
        self.window_ms = int(window * 1000)
        base = f"{settings.REDIS_PREFIX}:ratelimit:{name}"
        self.keys = [f"{base}:window", f"{base}:paused"]

    @property
    def _redis(self) -> redis.Redis:
        # On every request's path: with Redis down this raises redis.RedisError at once, and
        # the clients turn it into their own "try again later" error (fail closed: see README).
        return fail_fast_redis()

    def try_acquire(self, cost: int = 1) -> tuple[Reservation | None, float]:
        """Admit `cost` units now, or say how many seconds until they would fit."""
        if cost > self.limit:
            raise ValueError(
                f"a cost of {cost} can never fit rate limit {self.name!r} of {self.limit}"
            )
        member = uuid.uuid4().hex
        waiting, wait_ms = self._redis.eval(
            _ACQUIRE, 2, *self.keys, self.window_ms, self.limit, int(cost), member
        )
        if waiting:
            return None, int(wait_ms) / 1000
        return Reservation(self, f"{int(cost)}|{member}", int(cost), int(wait_ms) / 1000), 0.0

    def acquire(self, cost: int = 1, *, max_wait: float | None = None) -> Reservation:
        """Block until `cost` units fit; raise RateLimitTimeout past `max_wait` seconds."""
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            reservation, wait = self.try_acquire(cost)
            if reservation is not None:
                return reservation
            self._check_deadline(deadline, wait)
            time.sleep(wait)

    async def aacquire(self, cost: int = 1, *, max_wait: float | None = None) -> Reservation:
        """The same as acquire() for async callers (the Redis round trip is brief)."""
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            reservation, wait = self.try_acquire(cost)
            if reservation is not None:
                return reservation
            self._check_deadline(deadline, wait)
            await asyncio.sleep(wait)

    def _check_deadline(self, deadline: float | None, wait: float) -> None:
        if deadline is not None and time.monotonic() + wait > deadline:
            raise RateLimitTimeout(self.name, wait)

    def adjust(self, reservation: Reservation, cost: int) -> Reservation:
        cost = max(0, int(cost))
        new_member = f"{cost}|{reservation.member.split('|', 1)[1]}"
        self._redis.eval(_ADJUST, 1, self.keys[0], reservation.member, new_member)
        return Reservation(self, new_member, cost, reservation.admitted_at)

    def restamp(self, reservation: Reservation) -> Reservation:
        now_ms = self._redis.eval(_RESTAMP, 1, self.keys[0], reservation.member, self.window_ms)
        return Reservation(self, reservation.member, reservation.cost, int(now_ms) / 1000)

    def pause(self, seconds: float) -> float | None:
        """Admit nothing for `seconds` (a 429's retry-after), in every process.

        Returns when the pause ends, in seconds on Redis's clock (None for no pause).
        """
        paused = self.pause_from(seconds)
        return None if paused is None else paused[1]

    def pause_from(self, seconds: float) -> tuple[float, float] | None:
        """pause(), returning (when it was set, when it ends) on Redis's clock."""
        if seconds <= 0:
            return None
        until_ms, now_us = self._redis.eval(_PAUSE, 1, self.keys[1], int(seconds * 1000))
        return int(now_us) / 1_000_000, int(until_ms) / 1000

    def gate(self) -> tuple[float | None, float]:
        """Check for a pause right before a request goes out (an admitted request may wait in
        its process while another one's 429 arrives).

        (the moment it passed, on Redis's clock; 0) when not paused, else (None, seconds left).
        """
        paused, value = self._redis.eval(_GATE, 1, self.keys[1])
        if paused:
            return None, int(value) / 1_000_000
        return int(value) / 1_000_000, 0.0

    def paused_for(self) -> float:
        """Seconds left in a pause, 0 when not paused."""
        until_ms = self._redis.get(self.keys[1])
        if not until_ms:
            return 0.0
        seconds, micros = self._redis.time()
        return max(0.0, (int(until_ms) - (seconds * 1000 + micros // 1000)) / 1000)

    def usage(self) -> int:
        """Units admitted in the current window."""
        return int(self._redis.eval(_USAGE, 1, self.keys[0], self.window_ms))

    def clear(self) -> None:
        self._redis.delete(*self.keys)
