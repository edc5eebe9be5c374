from __future__ import annotations

import uuid

import httpx2
import openai
import pybreaker
import pytest

from ai.config import deployment_get
from ai.quota import deployment_breaker
from core import breakers
from core.breakers import redis_breaker, seconds_until_trial
from sheets.client import smartsheet_breaker


class Boom(Exception):
    pass


class NotTheServicesFault(Exception):
    pass


def _fail(breaker, error: type[Exception] | Exception = Boom):
    with (
        pytest.raises(
            (type(error) if isinstance(error, Exception) else error, pybreaker.CircuitBreakerError)
        ),
        breaker.calling(),
    ):
        raise error


def _another_process() -> None:
    """Forget this process's breakers, as a freshly started process has none."""
    breakers._breakers.clear()


def test_it_opens_for_every_process_after_repeated_failures_and_recovers(breaker_clock):
    name = f"test-{uuid.uuid4().hex[:8]}"
    breaker = redis_breaker(name, fail_max=3, reset_timeout=30)
    for _ in range(3):
        _fail(breaker)
    assert breaker.current_state == "open"

    _another_process()
    other = redis_breaker(name, fail_max=3, reset_timeout=30)
    assert other is not breaker
    assert other.current_state == "open"
    assert seconds_until_trial(other) == 30
    with pytest.raises(pybreaker.CircuitBreakerError), other.calling():
        pass

    breaker_clock.advance(29.9)
    assert seconds_until_trial(other) == pytest.approx(0.1)
    with pytest.raises(pybreaker.CircuitBreakerError), other.calling():
        pass
    breaker_clock.advance(0.1)
    assert seconds_until_trial(other) == 0
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


# Each production factory, and a failure that counts against its breaker.
FACTORIES = {
    "smartsheet": (smartsheet_breaker, Boom),
    "azure-openai": (
        lambda: deployment_breaker(deployment_get("gpt-4o-mini")),
        openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1:9")),
    ),
}


@pytest.mark.parametrize("service", FACTORIES)
def test_with_redis_down_the_breaker_keeps_its_state_in_the_process_and_shares_it_again_after(
    service, private_redis, settings
):
    settings.SMARTSHEET_BREAKER_FAIL_MAX = settings.AZURE_OPENAI_BREAKER_FAIL_MAX = 2
    settings.SMARTSHEET_BREAKER_RESET_TIMEOUT = settings.AZURE_OPENAI_BREAKER_RESET_TIMEOUT = 30
    factory, outage = FACTORIES[service]
    _fail(factory(), outage)  # counted in Redis

    private_redis.stop()
    _fail(factory(), outage)
    _fail(factory(), outage)
    # Each call asked the factory, as production code does: the state outlived the calls.
    assert factory().current_state == "open"
    with pytest.raises(pybreaker.CircuitBreakerError), factory().calling():
        pass
    assert factory()._state_storage.degraded

    private_redis.start()  # empty: nobody has seen failures in the shared state
    assert factory().current_state == "closed"
    assert not factory()._state_storage.degraded
    _fail(factory(), outage)
    _fail(factory(), outage)
    _another_process()
    assert factory().current_state == "open"  # written to Redis, where others read it


def test_a_breaker_on_a_redis_that_never_answered_works_in_the_process(settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nobody listens on port 9
    name = f"test-{uuid.uuid4().hex[:8]}"
    _fail(redis_breaker(name, fail_max=2))
    _fail(redis_breaker(name, fail_max=2))
    assert redis_breaker(name, fail_max=2).current_state == "open"
