from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from core.ratelimit import redis_client
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db

ATTACKER = "10.0.0.66"


@pytest.fixture(autouse=True)
def _forget_failed_logins():
    def forget():
        client = redis_client()
        keys = list(client.scan_iter(match=f"{settings.REDIS_PREFIX}:login-failures:*"))
        if keys:
            client.delete(*keys)

    forget()
    yield
    forget()


def _log_in(client, username, password, address=ATTACKER, url=None):
    return client.post(
        url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_out_even_the_right_one_and_say_until_when(client, alice):
    for _ in range(4):
        response = _log_in(client, "alice", "guess")
        assert b"do not match an account" in response.content
    response = _log_in(client, "alice", "guess")  # the fifth: says so at once
    assert b"Too many failed log-in attempts. Try again in 15 minutes, after" in response.content

    response = _log_in(client, "alice", "alice-password")
    assert response.status_code == 200
    assert b"Too many failed log-in attempts" in response.content
    assert not _logged_in(client)


def test_sixty_wrong_passwords_then_the_right_one_is_refused(client, alice):
    for _ in range(60):
        _log_in(client, "alice", "guess")
    _log_in(client, "alice", "alice-password")
    assert not _logged_in(client)


def test_the_admin_login_is_locked_out_too(client, staff):
    for _ in range(5):
        _log_in(client, "carol", "guess", url="/admin/login/")
    _log_in(client, "carol", "carol-password", url="/admin/login/")
    assert not _logged_in(client)


def test_a_lockout_holds_one_user_on_one_address_only(client, alice, bob):
    for _ in range(5):
        _log_in(client, "alice", "guess")
    _log_in(client, "bob", "bob-password")  # another user from the same address
    assert _logged_in(client)
    client.logout()
    _log_in(client, "alice", "alice-password", address="10.0.0.7")  # alice elsewhere
    assert _logged_in(client)


def test_an_address_guessing_many_usernames_is_locked_out(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 8
    for n in range(8):  # fewer than 5 per username: only the address's count trips
        _log_in(client, f"user{n}", "guess")
    response = _log_in(client, "bob", "bob-password")
    assert b"Too many failed log-in attempts" in response.content
    assert not _logged_in(client)
    _log_in(client, "bob", "bob-password", address="10.0.0.7")
    assert _logged_in(client)


def test_a_successful_login_starts_the_count_again(client, alice):
    for _ in range(4):
        _log_in(client, "alice", "guess")
    _log_in(client, "alice", "alice-password")
    assert _logged_in(client)
    client.logout()
    for _ in range(4):
        _log_in(client, "alice", "guess")
    _log_in(client, "alice", "alice-password")
    assert _logged_in(client)


def test_the_lockout_ends_after_its_time(client, alice, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 60
    for _ in range(5):
        _log_in(client, "alice", "guess")
    _log_in(client, "alice", "alice-password")
    assert not _logged_in(client)
    redis = redis_client()
    lockouts = [
        k
        for k in redis.scan_iter(match=f"{settings.REDIS_PREFIX}:login-failures:*")
        if redis.pttl(k) > 0
    ]
    assert lockouts and all(0 < redis.pttl(k) <= 60_000 for k in lockouts)

    # The minute passes, as the clock would (Redis expires the counters), without waiting it out.
    for key in lockouts:
        redis.pexpire(key, 1)

    def logs_in() -> bool:
        _log_in(client, "alice", "alice-password")
        return _logged_in(client)

    wait_until(logs_in, timeout=10, interval=0.05, what="the lockout to end")


def test_log_ins_still_work_while_redis_is_down(client, alice, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    _log_in(client, "alice", "guess")
    _log_in(client, "alice", "alice-password")
    assert _logged_in(client)
    assert "not throttled: Redis is unreachable" in caplog.text
    assert all(record.exc_info is None for record in caplog.records)
