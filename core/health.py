"""Readiness checks: each returns None when the dependency answers, else a short reason.

Apps add their own checks with `register_check` from their AppConfig.ready() (core imports no
other app). A check that is not `critical` is reported but does not make the process unready:
the web app still serves pages when, say, the AI deployment is misconfigured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

Check = Callable[[], "str | None"]


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


@dataclass(frozen=True)
class RegisteredCheck:
    check: Check
    critical: bool


CHECKS: dict[str, RegisteredCheck] = {
    "database": RegisteredCheck(check_database, critical=True),
    "redis": RegisteredCheck(check_redis, critical=True),
}


def register_check(name: str, check: Check, *, critical: bool = True) -> None:
    CHECKS[name] = RegisteredCheck(check, critical)


def readiness() -> tuple[dict[str, dict[str, str]], list[str]]:
    """Run every check: a report per dependency, and the names of the critical ones down."""
    report: dict[str, dict[str, str]] = {}
    down: list[str] = []
    for name, registered in CHECKS.items():
        error = registered.check()
        if error is None:
            report[name] = {"status": "ok"}
            continue
        report[name] = {"status": "down", "error": error}
        if registered.critical:
            down.append(name)
    return report, sorted(down)
