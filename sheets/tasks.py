"""Celery tasks: thin wrappers around sheets.sync and sheets.services (ids in, re-read inside)."""

from __future__ import annotations

from celery import shared_task

from sheets import services, sync
from sheets.client import SmartsheetUnavailable


@shared_task(
    queue="bulk",
    acks_late=True,
    soft_time_limit=14 * 60,
    time_limit=15 * 60,
    autoretry_for=(SmartsheetUnavailable,),
    retry_backoff=30,
    max_retries=3,
)
def sheet_sync_task(sheet_id: int, full: bool = False) -> str:
    sync.sheet_sync_pending_clear(sheet_id=sheet_id)
    return sync.sheet_sync(sheet_id=sheet_id, full=full).summary()


@shared_task(queue="bulk", soft_time_limit=10 * 60, time_limit=11 * 60)
def sheets_poll() -> int:
    return len(sync.sheets_poll())


@shared_task(queue="interactive", acks_late=True, soft_time_limit=5 * 60, time_limit=6 * 60)
def pending_edits_apply(sheet_id: int | None = None) -> int:
    """Write the cell edits kept while Smartsheet was away (beat runs it every minute)."""
    return services.pending_edits_apply(sheet_id=sheet_id)
