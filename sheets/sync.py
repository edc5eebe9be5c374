"""Keeping the mirror in step with Smartsheet: which sheets, when, and what a failure means.

Entry points: `sheets_discover` and `sheets_prune`, `sheet_sync` (what the task and `sync_sheets`
call) and `sheet_sync_request` (debounced, for webhooks and the poller in sheets/poll.py). How a
sheet is fetched and stored is in sheets/refresh.py and sheets/store.py; the lock that keeps to
one sync per sheet in sheets/locks.py.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from redis.exceptions import RedisError
from smartsheet.exceptions import ApiError

from core.ratelimit import redis_client
from sheets import client, refresh
from sheets.locks import SyncLockLost, redis_unavailable, sheet_sync_lock
from sheets.models import Sheet, SheetGrant
from sheets.refresh import SyncResult

logger = logging.getLogger(__name__)


# --- Discovery --------------------------------------------------------------------------------


class SheetNotFound(Exception):
    """Smartsheet does not know these sheet ids (or does not share them with this token)."""

    def __init__(self, sheet_ids: list[int]) -> None:
        self.sheet_ids = sheet_ids
        names = ", ".join(str(i) for i in sheet_ids)
        super().__init__(
            f"Smartsheet has no sheet {names} that this app's token can see: check the id "
            "(File > Properties in Smartsheet) and that the sheet is shared with the token's user."
        )


def sheets_discover(*, sheet_ids: list[int] | None = None) -> list[Sheet]:
    """Add sheets to the mirror: the given ids, or (None) every sheet the token can see.

    Given ids new to the mirror are checked with Smartsheet first (one small call each): if any
    is unknown there, SheetNotFound names them and nothing is stored.
    In sandbox mode the demo user is granted every sheet found, so the demo has data to show.
    """
    if sheet_ids is None:
        found = {int(s.id): s.name for s in client.sheets_list()}
    else:
        found = {int(i): "" for i in sheet_ids}
    existing = set(Sheet.objects.filter(pk__in=found).values_list("pk", flat=True))
    if sheet_ids is not None:
        unknown = [pk for pk in found if pk not in existing and not _sheet_exists(pk)]
        if unknown:
            raise SheetNotFound(unknown)
    Sheet.objects.bulk_create(
        [Sheet(id=pk, name=name or str(pk)) for pk, name in found.items() if pk not in existing]
    )
    sheets = list(Sheet.objects.filter(pk__in=found))
    if settings.SMARTSHEET_SANDBOX and settings.DEMO_USER:
        demo = get_user_model().objects.filter(username=settings.DEMO_USER).first()
        if demo is not None:
            SheetGrant.objects.bulk_create(
                [SheetGrant(sheet=s, user=demo, role=SheetGrant.Role.EDIT) for s in sheets],
                ignore_conflicts=True,
            )
    return sheets


def sheets_prune() -> list[Sheet]:
    """Remove the sheets marked gone (with their rows); returns them as they were."""
    gone = list(Sheet.objects.filter(sync_state=Sheet.SyncState.GONE))
    for sheet in gone:
        if sheet.webhook_id:
            try:  # Smartsheet disabled it with the sheet; without this it lingers in the list
                client.webhook_delete(webhook_id=sheet.webhook_id)
            except (client.SmartsheetUnavailable, ApiError) as exc:
                logger.info("webhook %s of gone sheet %s: %s", sheet.webhook_id, sheet.pk, exc)
    Sheet.objects.filter(pk__in=[s.pk for s in gone]).delete()
    return gone


def _sheet_exists(sheet_id: int) -> bool:
    try:
        client.sheet_version_get(sheet_id=sheet_id)
    except ApiError as exc:
        if gone_reason(exc) is None:
            raise
        return False
    return True


def gone_reason(exc: ApiError) -> str | None:
    """A sentence when the error means the sheet is gone for this token, else None."""
    result = getattr(exc.error, "result", None)
    status = getattr(result, "status_code", None)
    code = getattr(result, "error_code", None)
    if status == 404:
        return (
            f"Smartsheet no longer has this sheet, or no longer shares it with this app "
            f"(error {code}). Remove it with `manage.py sync_sheets --prune`."
        )
    if status == 403:
        return (
            f"This app's token may no longer read this sheet (error {code}). Share it with the "
            "token's user again, or remove it with `manage.py sync_sheets --prune`."
        )
    return None


def _failure_sentence(exc: Exception) -> str:
    """What the sheets page says about a failed sync (the detail goes to the log)."""
    if isinstance(exc, client.SmartsheetUnavailable):
        return "Smartsheet could not be reached; the sync will be tried again."
    if isinstance(exc, ApiError):
        code = getattr(getattr(exc.error, "result", None), "error_code", None)
        return f"Smartsheet refused the sync (error {code}); the log has the details."
    return "The sync failed unexpectedly; the log has the details."


# --- Sync -------------------------------------------------------------------------------------


def _pending_key(sheet_id: int, full: bool) -> str:
    return f"{settings.REDIS_PREFIX}:sheets:sync-pending:{sheet_id}:{'full' if full else 'incr'}"


def sheet_sync_request(
    *, sheet_id: int, countdown: float | None = None, full: bool = False
) -> bool:
    """Schedule a sync soon; a burst of requests becomes one sync.

    Returns False when a sync is already scheduled (it will see this change too). Called by
    the webhook receiver, the poller and a sync task that found its sheet busy, none of them
    inside a transaction (inside one, the task could run before the data it needs commits).
    """
    from sheets.tasks import sheet_sync_task

    delay = settings.SHEETS_SYNC_DEBOUNCE if countdown is None else countdown
    # The key outlives the countdown only a little: should the task be lost, the next request
    # schedules another instead of being swallowed for long.
    ttl = max(1, round(delay + settings.SHEETS_SYNC_PENDING_GRACE))
    try:
        if not redis_client().set(_pending_key(sheet_id, full), "1", nx=True, ex=ttl):
            return False
    except RedisError as exc:
        raise redis_unavailable(exc, f"scheduling a sync of sheet {sheet_id}") from exc
    sheet_sync_task.apply_async((sheet_id, True) if full else (sheet_id,), countdown=delay)
    return True


def sheet_sync_pending_clear(*, sheet_id: int, full: bool = False) -> None:
    """Called as a scheduled sync starts: changes from now on need a sync of their own."""
    try:
        redis_client().delete(_pending_key(sheet_id, full))
    except RedisError as exc:
        raise redis_unavailable(exc, f"starting a sync of sheet {sheet_id}") from exc


def sheet_sync(*, sheet_id: int, full: bool = False, wait: float = 0) -> SyncResult:
    """Bring one sheet's mirror up to date; one sync per sheet at a time, across processes.

    `wait`: seconds to wait for a running sync of the same sheet (0, for tasks: return
    "skipped" at once). A sheet Smartsheet no longer has comes back "gone" and is marked so.
    Raises client.SmartsheetUnavailable (also when Redis is down) or the SDK's ApiError; the
    sheet records the failure as a sentence, the log the detail.
    """
    with sheet_sync_lock(sheet_id=sheet_id, wait=wait) as held:
        if held is None:
            return SyncResult(sheet_id=sheet_id, kind="skipped")
        calls_before = client.api_calls_made()
        began = time.monotonic()
        sheet = Sheet.objects.filter(pk=sheet_id).first()
        if sheet is None:  # removed from the mirror since the sync was requested
            return SyncResult(sheet_id=sheet_id, kind="gone")
        Sheet.objects.filter(pk=sheet_id).update(sync_state=Sheet.SyncState.SYNCING)
        started_at = timezone.now()
        try:
            if (
                full
                or sheet.version is None
                or sheet.sync_started_at is None
                or sheet.sync_state == Sheet.SyncState.GONE
            ):
                result = refresh.full_sync(sheet, started_at, lock=held)
            else:
                result = refresh.incremental_sync(sheet, started_at, lock=held)
        except SyncLockLost:
            # Left "syncing": whoever holds the lock now finishes, or else the poller does.
            logger.warning("sync of sheet %s stopped: its lock expired meanwhile", sheet_id)
            return SyncResult(sheet_id=sheet_id, kind="skipped")
        except ApiError as exc:
            reason = gone_reason(exc)
            if reason is None:
                _mark_failed(sheet_id, exc)
                raise
            logger.warning("sheet %s is gone from Smartsheet: %s", sheet_id, exc)
            Sheet.objects.filter(pk=sheet_id).update(
                sync_state=Sheet.SyncState.GONE, sync_outcome=reason, synced_at=timezone.now()
            )
            result = SyncResult(sheet_id=sheet_id, kind="gone")
        except Exception as exc:
            _mark_failed(sheet_id, exc)
            raise
    result.calls = client.api_calls_made() - calls_before
    result.seconds = time.monotonic() - began
    return result


def _mark_failed(sheet_id: int, exc: Exception) -> None:
    if isinstance(exc, client.SmartsheetUnavailable | ApiError):
        logger.warning("sync of sheet %s failed: %s", sheet_id, exc)
    else:
        logger.error("sync of sheet %s failed", sheet_id, exc_info=exc)
    Sheet.objects.filter(pk=sheet_id).update(
        sync_state=Sheet.SyncState.FAILED,
        sync_outcome=_failure_sentence(exc),
        synced_at=timezone.now(),
    )
