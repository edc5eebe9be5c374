"""The process's Redis connections, one pool per URL and kind.

Two kinds, because callers differ in how long they may wait for an answer:
- `redis_client()`: locks, dedup keys and other plain state (redis-py's defaults: a couple of
  retries on a dropped connection);
- `fail_fast_redis()`: what sits on the path of every Smartsheet or Azure OpenAI request (the
  shared limiters and breakers). No retries and sub-second timeouts: with Redis down, a call
  must fail (or fall back) at once instead of taking seconds per Redis round trip. Bytes back
  (`decode_responses=False`), which pybreaker's storage expects.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

FAIL_FAST_TIMEOUT = 0.5


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


@functools.cache
def _fail_fast(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=FAIL_FAST_TIMEOUT,
        socket_timeout=FAIL_FAST_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def redis_client(url: str | None = None) -> redis.Redis:
    """The shared client for REDIS_URL (or `url`)."""
    return _client(url or settings.REDIS_URL)


def fail_fast_redis(url: str | None = None) -> redis.Redis:
    """A client that never retries and gives up within FAIL_FAST_TIMEOUT seconds."""
    return _fail_fast(url or settings.REDIS_URL)
