from __future__ import annotations

from celery import shared_task


@shared_task(name="core.ping", soft_time_limit=5, time_limit=10)
def ping(value: str = "pong") -> str:
    """A trivial task that proves a worker is consuming the broker (used by tests and /readyz)."""
    return value
