from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import redis

from core.ratelimit import RateLimitTimeout, SlidingWindowLimiter, fail_fast_redis
from tests.conftest import ROOT, server_env, wait_until


@pytest.fixture
def limiter_name():
    return f"test-{uuid.uuid4().hex[:8]}"


def redis_now() -> float:
    """Seconds on Redis's clock, the one the limiter's window runs on."""
    seconds, micros = fail_fast_redis().time()
    return seconds + micros / 1_000_000


def test_it_admits_up_to_the_limit_then_says_how_long_to_wait(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=5, window=2)
    admitted = []
    for _ in range(5):
        reservation, wait = limiter.try_acquire()
        assert reservation is not None and wait == 0
        admitted.append(reservation.admitted_at)
    reservation, wait = limiter.try_acquire()
    after = redis_now()
    assert reservation is None
    # Until the oldest admission leaves the window (times on Redis's clock, to the ms).
    assert admitted[0] + 2.0 - after - 0.001 <= wait <= 2.0
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


def test_acquire_waits_for_the_window_to_slide(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=2, window=0.5)
    first = limiter.acquire()
    limiter.acquire()
    third = limiter.acquire()
    assert third.admitted_at >= first.admitted_at + 0.5  # not before the oldest left the window
    assert limiter.usage() <= 2


def test_acquire_gives_up_past_its_max_wait(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=1, window=30)
    limiter.acquire()
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(max_wait=0.1)


def test_a_pause_stops_every_caller_until_it_ends(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=100, window=60)
    _, ends = limiter.pause(30)
    assert 0 < limiter.paused_for() <= 30
    reservation, wait = limiter.try_acquire()
    assert reservation is None and 0 < wait <= 30
    assert abs(wait - (ends - redis_now())) < 1

    limiter.clear()
    _, ends = limiter.pause(0.3)
    assert limiter.acquire().admitted_at >= ends
    assert limiter.paused_for() == 0


def test_a_request_counts_in_the_window_from_when_its_answer_came_back(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=1, window=10)
    sent = limiter.acquire()
    # The answer takes a while (the service counted the request somewhere in between).
    wait_until(lambda: redis_now() >= sent.admitted_at + 0.3, timeout=10, what="Redis's clock")
    answered = sent.count_from_now()
    assert answered.admitted_at >= sent.admitted_at + 0.3
    reservation, wait = limiter.try_acquire()
    assert reservation is None
    assert wait >= answered.admitted_at + 10 - redis_now() - 0.001  # ten seconds from the answer
    assert limiter.usage() == 1


def test_a_request_answered_after_its_window_has_passed_counts_again_from_its_answer(
    limiter_name,
):
    limiter = SlidingWindowLimiter(limiter_name, limit=1, window=0.2)
    sent = limiter.acquire()
    # The answer is slower than the window: our window has let the request go ...
    wait_until(lambda: limiter.usage() == 0, timeout=10, what="the window to slide past it")
    # ... though the service counted it on arrival, somewhere in between.
    answered = sent.count_from_now()
    assert answered.admitted_at >= sent.admitted_at + 0.2
    assert limiter.try_acquire()[0] is None
    assert limiter.usage() == 1


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


# A child process: no Django set-up, no test module to import (each costs seconds under load).
TAKE = """
import sys
from core.ratelimit import SlidingWindowLimiter
limiter = SlidingWindowLimiter(sys.argv[1], limit=10, window=1)
for _ in range(int(sys.argv[2])):
    print(limiter.acquire().admitted_at, flush=True)
"""


def test_two_processes_together_stay_under_the_limit(limiter_name):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", TAKE, limiter_name, "15"],
            cwd=ROOT,
            env=server_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    # Admission times as the limiter recorded them, on Redis's clock: the client's own clock
    # reads would add however long each process waited to be scheduled.
    admitted = sorted(
        float(line) for child in children for line in child.communicate(timeout=120)[0].split()
    )
    assert len(admitted) == 30
    # No one-second window [t, t + 1) holds more than 10 admissions.
    for i, start in enumerate(admitted):
        assert len([t for t in admitted[i:] if t < start + 1.0]) <= 10
    assert admitted[-1] - admitted[0] >= 2.0  # 30 admissions at 10/s need two full slides


def test_the_windows_sum_follows_entries_leaving_corrections_and_late_answers(limiter_name):
    limiter = SlidingWindowLimiter(limiter_name, limit=100, window=0.3)
    first, _ = limiter.try_acquire(40)
    second, _ = limiter.try_acquire(50)
    second = second.adjust(20)
    assert limiter.usage() == 60
    wait_until(lambda: limiter.usage() == 0, timeout=10, what="both to leave the window")
    first.count_from_now()  # answered after its window: counts again, from now
    assert limiter.usage() == 40
    # The sum lost (a Redis restart keeps the window, say): rebuilt from the window's entries.
    fail_fast_redis().delete(limiter.keys[2])
    assert limiter.usage() == 40
    assert limiter.try_acquire(61)[0] is None
    assert limiter.try_acquire(60)[0] is not None


def test_admitting_costs_no_walk_over_a_full_window(limiter_name):
    """A tokens window at 100 requests/s holds 6,000 entries; summing them on every request
    took 3 ms of Redis CPU per request (most of a core at the quota's pace)."""
    limiter = SlidingWindowLimiter(limiter_name, limit=10**9, window=60)
    redis_client = fail_fast_redis()
    with redis_client.pipeline(transaction=False) as pipe:
        for _batch in range(12):
            for _ in range(500):
                pipe.eval(
                    "redis.call('ZADD', KEYS[1], redis.call('TIME')[1] * 1000, ARGV[1])",
                    1,
                    limiter.keys[0],
                    f"600|{uuid.uuid4().hex}",
                )
            pipe.execute()
    assert limiter.usage() == 6000 * 600  # the sum, built once
    before = _eval_usec(redis_client)
    for _ in range(50):
        assert limiter.try_acquire(600)[0] is not None
    calls, usec = (a - b for a, b in zip(_eval_usec(redis_client), before, strict=True))
    # Other processes' scripts may run meanwhile; they are short.
    assert usec / max(calls, 50) < 500


def _eval_usec(redis_client) -> tuple[int, int]:
    stats = redis_client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_eval", "cmdstat_evalsha"):
        calls += stats.get(name, {}).get("calls", 0)
        usec += stats.get(name, {}).get("usec", 0)
    return calls, usec
