"""Failed log-ins are counted in Redis per username + address and per address alone.

After LOGIN_FAILURE_LIMIT failures for one username from one address (or
LOGIN_FAILURE_LIMIT_PER_ADDRESS from one address, whatever the usernames), that pair (or address)
is locked out for LOGIN_LOCKOUT_SECONDS after its last failure: even the right password is
refused. A successful log-in clears its username + address count (not the address's).

Why not django-axes: it has one failure limit for every lockout parameter, so "5 per user and
address, more per address" needs a second counter anyway, and its database handler writes a row
per attempt. Two Redis counters are all this needs, and every process shares them.

Three hooks cover every log-in path (the login page, the admin, `authenticate()` anywhere):
`user_login_failed` counts, `user_logged_in` resets, and `LoginThrottleBackend` (first in
AUTHENTICATION_BACKENDS) refuses a locked-out attempt before any password is checked. Without a
request (the test client's `login()`, a shell) there is no address and nothing is counted.
If Redis is down, log-ins are not throttled (one warning each) rather than impossible.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from redis.exceptions import RedisError

from core.ratelimit import redis_client

logger = logging.getLogger(__name__)

# KEYS: the counters. ARGV: [1] lockout seconds, then each key's limit. A counter lives one
# window from its first failure; the failure that reaches the limit locks for a full window, and
# attempts while locked are not counted (so trying again early does not push the time back).
_RECORD_FAILURE = """
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if tonumber(redis.call('GET', key) or '0') < limit then
    local failures = redis.call('INCR', key)
    if failures >= limit or redis.call('TTL', key) < 0 then
      redis.call('EXPIRE', key, ARGV[1])
    end
  end
end
return 1
"""


def _keys(username: str, address: str) -> tuple[str, str]:
    # Hashed: usernames are arbitrary user input; lower-cased so case does not dodge the count.
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    prefix = f"{settings.REDIS_PREFIX}:login-failures"
    return f"{prefix}:{user}:{address}", f"{prefix}:address:{address}"


def _limits() -> tuple[int, int]:
    return settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS


def login_lockout_until(*, username: str, address: str) -> datetime | None:
    """When this username may try again from this address, or None if it may now."""
    keys = _keys(username, address)
    pipe = redis_client(settings.REDIS_URL).pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.pttl(key)
    try:
        user_count, user_ttl, address_count, address_ttl = pipe.execute()
    except RedisError as exc:
        logger.warning("Log-in attempts are not throttled: Redis is unreachable (%s)", exc)
        return None
    waits = [
        ttl
        for count, ttl, limit in (
            (user_count, user_ttl, _limits()[0]),
            (address_count, address_ttl, _limits()[1]),
        )
        if count is not None and int(count) >= limit and ttl > 0
    ]
    if not waits:
        return None
    return timezone.now() + timedelta(milliseconds=max(waits))


def login_failure_record(*, username: str, address: str) -> None:
    try:
        redis_client(settings.REDIS_URL).eval(
            _RECORD_FAILURE,
            2,
            *_keys(username, address),
            settings.LOGIN_LOCKOUT_SECONDS,
            *_limits(),
        )
    except RedisError as exc:
        logger.warning("A failed log-in was not counted: Redis is unreachable (%s)", exc)


def login_failures_reset(*, username: str, address: str) -> None:
    try:
        redis_client(settings.REDIS_URL).delete(_keys(username, address)[0])
    except RedisError as exc:
        logger.warning("Failed log-ins were not reset: Redis is unreachable (%s)", exc)


def client_address(request: HttpRequest | None) -> str | None:
    """The client's IP (daphne fills it in; behind a proxy run daphne with --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") if request is not None else None


class LoginThrottleBackend:
    """Refuses every attempt of a locked-out username/address, whatever the password."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs):
        address = client_address(request)
        if address and username and login_lockout_until(username=username, address=address):
            # Stops authenticate() from asking the other backends (Django's contract).
            raise PermissionDenied
        # No get_user(): this backend never logs anyone in, so sessions never name it.
        return None


@receiver(user_login_failed)
def _count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    address = client_address(request)
    username = credentials.get("username")
    if address and username:
        login_failure_record(username=username, address=address)


@receiver(user_logged_in)
def _reset_failures(sender, request: HttpRequest | None, user, **kwargs):
    address = client_address(request)
    if address:
        login_failures_reset(username=user.get_username(), address=address)
