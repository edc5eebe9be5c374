"""Readiness checks: each returns None when the dependency answers, else a short reason."""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def check_redis() -> str | None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1, retry_on_timeout=False
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "redis": check_redis,
}


def readiness() -> dict[str, dict[str, str]]:
    """Run every check; the result maps a dependency's name to {"status": "ok"|"down", ...}."""
    report: dict[str, dict[str, str]] = {}
    for name, check in CHECKS.items():
        error = check()
        report[name] = {"status": "ok"} if error is None else {"status": "down", "error": error}
    return report
