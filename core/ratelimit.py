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

# Every window keeps the sum of its members' costs in a third key, so admitting a request costs
# the entries that left the window since the last look, not a walk over the whole window (a
# tokens window at 100 requests/s holds 6,000 entries: 3 ms of Redis CPU per walk). The sum is
# rebuilt from the sorted set whenever it is missing (Redis restarted, keys from before it).
_LIB = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function cost_of(member)
  return tonumber(string.match(member, '^(%d+)|'))
end
-- Units in the window ending `now`; entries that left it are dropped and taken off the sum.
local function rebuilt(window_key, sum_key, window, cutoff)
  redis.call('ZREMRANGEBYSCORE', window_key, '-inf', cutoff)
  local used = 0
  for _, member in ipairs(redis.call('ZRANGE', window_key, 0, -1)) do
    used = used + cost_of(member)
  end
  redis.call('SET', sum_key, used, 'PX', window + 1000)
  return used
end
local function used_in(window_key, sum_key, window, now)
  local cutoff = now - window
  local sum = redis.call('GET', sum_key)
  if not sum or redis.call('EXISTS', window_key) == 0 then
    return rebuilt(window_key, sum_key, window, cutoff)
  end
  local left = redis.call('ZRANGEBYSCORE', window_key, '-inf', cutoff)
  if #left == 0 then
    return tonumber(sum)
  end
  local freed = 0
  for _, member in ipairs(left) do
    freed = freed + cost_of(member)
  end
  redis.call('ZREMRANGEBYSCORE', window_key, '-inf', cutoff)
  local used = redis.call('DECRBY', sum_key, freed)
  if used < 0 then
    return rebuilt(window_key, sum_key, window, cutoff)
  end
  return used
end
-- Milliseconds until `cost` more fits: enough of the oldest entries have left the window.
local function wait_for(window_key, used, cost, limit, window, now)
  local freed = 0
  local start = 0
  while true do
    local entries = redis.call('ZRANGE', window_key, start, start + 99, 'WITHSCORES')
    if #entries == 0 then
      return window
    end
    for i = 1, #entries, 2 do
      freed = freed + cost_of(entries[i])
      if used - freed + cost <= limit then
        return math.max(1, tonumber(entries[i + 1]) + window - now)
      end
    end
    start = start + 100
  end
end
local function keep(window_key, sum_key, window)
  redis.call('PEXPIRE', window_key, window + 1000)
  redis.call('PEXPIRE', sum_key, window + 1000)
end
"""

# Admits a cost in each of several windows at once, or in none.
# KEYS: per window [window, pause-until, sum]. ARGV: [1] member id, then per window
# [window ms, limit, cost]. Returns {0, admission time in ms on Redis's clock} when admitted,
# else {1, ms to wait} (the longest any window asks).
_ACQUIRE = (
    _LIB
    + """
local now = now_ms()
local n = #KEYS / 3
local wait = 0
for i = 1, n do
  local paused = tonumber(redis.call('GET', KEYS[3 * i - 1]) or '0')
  if paused > now then
    wait = math.max(wait, paused - now)
  end
end
if wait > 0 then
  return {1, wait}
end
for i = 1, n do
  local window = tonumber(ARGV[3 * i - 1])
  local limit = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local used = used_in(KEYS[3 * i - 2], KEYS[3 * i], window, now)
  if used + cost > limit then
    wait = math.max(wait, wait_for(KEYS[3 * i - 2], used, cost, limit, window, now))
  end
end
if wait > 0 then
  return {1, wait}
end
for i = 1, n do
  local window = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i + 1])
  redis.call('ZADD', KEYS[3 * i - 2], now, cost .. '|' .. ARGV[1])
  redis.call('INCRBY', KEYS[3 * i], cost)
  keep(KEYS[3 * i - 2], KEYS[3 * i], window)
end
return {0, now}
"""
)

# KEYS: [1] the window, [2] its sum. ARGV: [1] old member, [2] new member. Keeps the original
# time.
_ADJUST = (
    _LIB
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('INCRBY', KEYS[2], cost_of(ARGV[2]) - cost_of(ARGV[1]))
end
return 1
"""
)

# KEYS: per window [window, sum]. ARGV: per window [member, window ms]. Moves each member to
# Redis's now, back into its window if it had left it (an answer slower than the window).
# Returns the new time (ms).
_RESTAMP = (
    _LIB
    + """
local now = now_ms()
for i = 1, #KEYS / 2 do
  local window = tonumber(ARGV[2 * i])
  if redis.call('ZADD', KEYS[2 * i - 1], now, ARGV[2 * i - 1]) == 1 then
    -- It had left the window (and the sum, or the sum is gone and is rebuilt next time).
    if redis.call('EXISTS', KEYS[2 * i]) == 1 then
      redis.call('INCRBY', KEYS[2 * i], cost_of(ARGV[2 * i - 1]))
    end
  end
  keep(KEYS[2 * i - 1], KEYS[2 * i], window)
end
return now
"""
)

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

# KEYS: [1] the window, [2] its sum. ARGV: [1] window ms.
_USAGE = (
    _LIB
    + """
return used_in(KEYS[1], KEYS[2], tonumber(ARGV[1]), now_ms())
"""
)


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
        self.keys = [f"{base}:window", f"{base}:paused", f"{base}:sum"]

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
        reservations, wait = acquire_together([(self, cost)])
        return (None, wait) if reservations is None else (reservations[0], 0.0)

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
        self._redis.eval(_ADJUST, 2, self.keys[0], self.keys[2], reservation.member, new_member)
        return Reservation(self, new_member, cost, reservation.admitted_at)

    def restamp(self, reservation: Reservation) -> Reservation:
        return restamp_together([reservation])[0]

    def pause(self, seconds: float) -> tuple[float, float] | None:
        """Admit nothing for `seconds` (a 429's retry-after), in every process; a pause only
        ever grows.

        Returns (when it was set, when it ends) in seconds on Redis's clock (None for no pause).
        """
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
        return int(self._redis.eval(_USAGE, 2, self.keys[0], self.keys[2], self.window_ms))

    def clear(self) -> None:
        self._redis.delete(*self.keys)


def acquire_together(
    costs: list[tuple[SlidingWindowLimiter, int]],
) -> tuple[tuple[Reservation, ...] | None, float]:
    """Admit each cost in its limiter, all in one Redis round trip, or none of them: the
    reservations, else (None, seconds until all would fit).

    Holding a slot of one limiter while waiting for another would starve other processes; here
    nothing is held unless everything fits.
    """
    keys: list[str] = []
    args: list[int | str] = [uuid.uuid4().hex]
    for limiter, cost in costs:
        if cost > limiter.limit:
            raise ValueError(
                f"a cost of {cost} can never fit rate limit {limiter.name!r} of {limiter.limit}"
            )
        keys.extend(limiter.keys)
        args.extend((limiter.window_ms, limiter.limit, int(cost)))
    waiting, value = costs[0][0]._redis.eval(_ACQUIRE, len(keys), *keys, *args)
    if waiting:
        return None, int(value) / 1000
    admitted = int(value) / 1000
    return tuple(
        Reservation(limiter, f"{int(cost)}|{args[0]}", int(cost), admitted)
        for limiter, cost in costs
    ), 0.0


def restamp_together(reservations: list[Reservation] | tuple[Reservation, ...]) -> tuple:
    """Reservation.count_from_now for several reservations in one Redis round trip."""
    keys: list[str] = []
    args: list[int | str] = []
    for reservation in reservations:
        keys.extend((reservation.limiter.keys[0], reservation.limiter.keys[2]))
        args.extend((reservation.member, reservation.limiter.window_ms))
    now_ms = reservations[0].limiter._redis.eval(_RESTAMP, len(keys), *keys, *args)
    return tuple(Reservation(r.limiter, r.member, r.cost, int(now_ms) / 1000) for r in reservations)


def usage_together(limiters: list[SlidingWindowLimiter]) -> list[int]:
    """SlidingWindowLimiter.usage for several limiters in one Redis round trip."""
    if not limiters:
        return []
    with limiters[0]._redis.pipeline(transaction=False) as pipe:
        for limiter in limiters:
            pipe.eval(_USAGE, 2, limiter.keys[0], limiter.keys[2], limiter.window_ms)
        return [int(used) for used in pipe.execute()]
