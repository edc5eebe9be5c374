from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
import redis

from core.ratelimit import RateLimitTimeout, SlidingWindowLimiter


@pytest.fixture
def limiter_name():
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The seconds the limiter slept for, in order (it still sleeps them)."""
    asked: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr("core.ratelimit.time.sleep", sleep)
    return asked


def test_it_admits_up_to_the_limit_then_says_how_long_to_wait(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=5, window=2)
    for _ in range(5):
        reservation, wait = limiter.try_acquire()
        assert reservation is not None and wait == 0
    reservation, wait = limiter.try_acquire()
    assert reservation is None
    assert 1.5 < wait <= 2.0
    assert limiter.usage() == 5


def test_costs_count_against_the_limit_and_can_be_corrected(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=100, window=60)
    big, _ = limiter.try_acquire(90)  # e.g. prompt + max_tokens charged up front
    assert limiter.try_acquire(20)[0] is None
    big.adjust(30)  # the response reported fewer tokens
    assert limiter.usage() == 30
    assert limiter.try_acquire(20)[0] is not None


def test_a_cost_that_can_never_fit_is_refused_at_once(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=10)
    with pytest.raises(ValueError, match="can never fit"):
        limiter.try_acquire(11)


def test_acquire_waits_for_the_window_to_slide(limiter_name, waits):
    limiter = SlidingWindowLimiter(limiter_name, limit=2, window=0.5)
    limiter.acquire()
    limiter.acquire()
    assert waits == []
    assert limiter.acquire() is not None
    assert 0.4 < sum(waits) <= 0.5 + 0.05 * len(waits)  # until the oldest left the window
    assert limiter.usage() <= 2


def test_acquire_gives_up_past_its_max_wait(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=1, window=30)
    limiter.acquire()
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(max_wait=0.1)


def test_a_pause_stops_every_caller_until_it_ends(limiter_name, waits):
    limiter = SlidingWindowLimiter(limiter_name, limit=100, window=60)
    limiter.pause(0.3)
    assert 0.1 < limiter.paused_for() <= 0.3
    reservation, wait = limiter.try_acquire()
    assert reservation is None and 0 < wait <= 0.3
    assert limiter.acquire() is not None
    assert 0.1 < sum(waits) <= 0.3 + 0.05 * len(waits)
    assert limiter.paused_for() == 0


def test_with_redis_down_it_refuses_and_works_again_when_redis_returns(limiter_name, private_redis):
    limiter = SlidingWindowLimiter(limiter_name, limit=5, window=60)
    assert limiter.try_acquire()[0] is not None
    private_redis.stop()
    # Fail closed: the clients turn this into their own "try again later" error.
    with pytest.raises(redis.ConnectionError):
        limiter.try_acquire()
    private_redis.start()
    assert limiter.try_acquire()[0] is not None
    assert limiter.usage() == 1  # the restarted Redis came back empty


def _take(name: str, count: int, queue) -> None:
    # A spawned child: set Django up from the environment the suite exported.
    import django

    django.setup()
    from core.ratelimit import SlidingWindowLimiter

    limiter = SlidingWindowLimiter(name, limit=10, window=1)
    for _ in range(count):
        limiter.acquire()
        queue.put(time.time())


def test_two_processes_together_stay_under_the_limit(limiter_name):
    # spawn, not fork: by now the suite's process has threads (Celery, Playwright) to inherit.
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_take, args=(limiter_name, 15, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    admitted = sorted(queue.get(timeout=30) for _ in range(30))
    for worker in workers:
        worker.join(timeout=5)
    # No one-second window holds more than 10 admissions (small slack for clock reads).
    for i, start in enumerate(admitted):
        in_window = [t for t in admitted[i:] if t < start + 0.98]
        assert len(in_window) <= 10
    assert admitted[-1] - admitted[0] >= 2.0  # 30 admissions at 10/s need two full slides
