from __future__ import annotations

import time
import uuid

import pybreaker
import pytest

from core import breakers
from core.breakers import redis_breaker


class Boom(Exception):
    pass


class NotTheServicesFault(Exception):
    pass


def _fail(breaker):
    with pytest.raises((Boom, pybreaker.CircuitBreakerError)), breaker.calling():
        raise Boom


def test_it_opens_for_every_process_after_repeated_failures_and_recovers():
    name = f"test-{uuid.uuid4().hex[:8]}"
    breaker = redis_breaker(name, fail_max=3, reset_timeout=1)
    for _ in range(3):
        _fail(breaker)
    assert breaker.current_state == "open"

    # Another process builds its own breaker of the same name: it sees the open state.
    breakers._breakers.clear()
    other = redis_breaker(name, fail_max=3, reset_timeout=1)
    assert other is not breaker
    assert other.current_state == "open"
    with pytest.raises(pybreaker.CircuitBreakerError), other.calling():
        pass

    time.sleep(2.1)  # pybreaker stores the opening time in whole seconds
    with other.calling():
        pass  # the half-open trial succeeds
    assert other.current_state == "closed"
    assert breaker.current_state == "closed"


def test_excluded_errors_never_trip_it():
    breaker = redis_breaker(
        f"test-{uuid.uuid4().hex[:8]}", fail_max=2, exclude=[NotTheServicesFault]
    )
    for _ in range(5):
        with pytest.raises(NotTheServicesFault), breaker.calling():
            raise NotTheServicesFault
    assert breaker.current_state == "closed"


def test_with_redis_down_it_still_works_in_the_process(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    breaker = redis_breaker(f"test-{uuid.uuid4().hex[:8]}", fail_max=2)
    started = time.monotonic()
    for _ in range(2):
        _fail(breaker)
    assert breaker.current_state == "open"
    assert time.monotonic() - started < 2
