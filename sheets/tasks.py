"""Celery tasks: thin wrappers around sheets.sync, sheets.poll and sheets.services (ids in,
everything re-read inside).

All run on the `bulk` queue, the default one, except the pending edits (a person waits for
them) on `interactive`.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from sheets import poll, services, sync
from sheets.client import SmartsheetUnavailable


# ignore_result: nobody reads these results, and storing one needs Redis after the work is done
# (during an outage that turned a finished task into "raised unexpected: ConnectionError").
@shared_task(
    ignore_result=True,
    acks_late=True,
    soft_time_limit=14 * 60,
    time_limit=15 * 60,
    autoretry_for=(SmartsheetUnavailable,),
    retry_backoff=30,
    max_retries=3,
)
def sheet_sync_task(sheet_id: int, full: bool = False) -> str:
    sync.sheet_sync_pending_clear(sheet_id=sheet_id, full=full)
    result = sync.sheet_sync(sheet_id=sheet_id, full=full)
    if result.kind == "skipped":
        # Another sync holds the sheet: come back later rather than hold this worker slot
        # waiting for it (what it fetched may predate the change that asked for this one).
        sync.sheet_sync_request(
            sheet_id=sheet_id, full=full, countdown=settings.SHEETS_SYNC_BUSY_RETRY
        )
    return result.summary()


@shared_task(ignore_result=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def sheets_poll() -> str:
    try:
        done = poll.sheets_poll()
    except SmartsheetUnavailable:  # logged where it happened; beat runs the next round anyway
        return "skipped: try again next round"
    return (
        f"{len(done.requested)} syncs requested, {len(done.resumed)} interrupted syncs resumed, "
        f"{len(done.webhooks_repaired)} webhooks repaired"
    )


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def syncs_resume() -> str:
    try:
        resumed = poll.syncs_resume()
    except SmartsheetUnavailable:  # Redis down: logged where it happened; beat tries again
        return "skipped: try again next round"
    return f"{len(resumed)} interrupted syncs resumed"


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=5 * 60, time_limit=6 * 60)
def pending_edits_apply(sheet_id: int | None = None) -> int:
    """Write the cell edits kept while Smartsheet was away (beat runs it every minute)."""
    return services.pending_edits_apply(sheet_id=sheet_id)
