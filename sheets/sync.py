"""Keeping the mirror in step with Smartsheet: discovery, full sync and incremental sync.

Entry points: `sheets_discover`, `sheet_sync` (what the task and `sync_sheets` call) and
`sheet_sync_request` (debounced, for webhooks and the poller in sheets/poll.py). Every change to
the mirror is announced on the sheet's group (see sheets/events.py) once its transaction commits.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from smartsheet.exceptions import ApiError

from core.ratelimit import redis_client
from sheets import client, store
from sheets.events import sheet_changed_send
from sheets.locks import redis_unavailable, sheet_sync_lock
from sheets.models import Column, Row, Sheet

logger = logging.getLogger(__name__)


@dataclass
class SyncResult:
    sheet_id: int
    # "unchanged", "incremental", "full", "skipped" (another sync was running) or "gone"
    kind: str
    version: int | None = None
    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if self.kind == "gone":
            return "gone from Smartsheet"
        if self.kind in ("unchanged", "skipped"):
            return self.kind
        return (
            f"{self.kind}: {len(self.added)} added, {len(self.changed)} updated, "
            f"{len(self.deleted)} deleted"
        )


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
            through = Sheet.granted_users.through
            through.objects.bulk_create(
                [through(sheet_id=s.pk, user_id=demo.pk) for s in sheets], ignore_conflicts=True
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
                result = _full_sync(sheet, started_at)
            else:
                result = _incremental_sync(sheet, started_at)
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


def _mark_synced(sheet_id: int, started_at: datetime, result: SyncResult, **fields) -> None:
    Sheet.objects.filter(pk=sheet_id).update(
        sync_state=Sheet.SyncState.OK,
        sync_outcome=result.summary(),
        synced_at=timezone.now(),
        sync_started_at=started_at,
        **fields,
    )


def _announce(result: SyncResult, *, reload: bool = False) -> None:
    if not (result.added or result.changed or result.deleted or reload):
        return
    transaction.on_commit(
        lambda: sheet_changed_send(
            sheet_id=result.sheet_id,
            version=result.version,
            changed=result.changed,
            added=result.added,
            deleted=result.deleted,
            reload=reload,
        )
    )


@dataclass
class _FullPass:
    """One pass over every page of a sheet, all at the same version."""

    version: int
    head: dict  # the sheet's fields other than rows
    columns: dict[int, dict]
    seen: set[int] = field(default_factory=set)
    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)


def _full_pass(
    sheet_id: int, before: dict[int, tuple], pool: ThreadPoolExecutor
) -> _FullPass | None:
    """Store every page; None when the sheet changed between pages (the caller starts over)."""
    size = settings.SHEETS_SYNC_PAGE_SIZE

    def fetch(page: int) -> dict:
        return client.sheet_get(sheet_id=sheet_id, pageSize=size, page=page)

    remote = fetch(1)
    full = _FullPass(
        version=int(remote["version"]),
        head={k: v for k, v in remote.items() if k != "rows"},
        columns={int(c["id"]): store.column_fields(c) for c in remote["columns"]},
    )
    store.columns_replace(sheet_id, full.columns)
    total = int(remote.get("totalRowCount") or 0)
    # Should Smartsheet send fewer rows than asked for, page by what it sends.
    per_page = len(remote.get("rows") or []) or size
    page = 1
    while True:
        more = page * per_page < total
        upcoming = pool.submit(fetch, page + 1) if more else None
        rows = {int(r["id"]): store.row_fields(r) for r in remote.get("rows") or []}
        del remote
        with transaction.atomic():
            store.rows_upsert(sheet_id, rows)
        for pk, fields in rows.items():
            full.seen.add(pk)
            old = before.get(pk)
            if old is None:
                full.added.append(pk)
            elif old != (fields["row_number"], fields["parent_id"], fields["modified_at"]):
                full.changed.append(pk)
        del rows
        if upcoming is None:
            return full
        remote = upcoming.result()
        page += 1
        if int(remote["version"]) != full.version:
            return None


def _full_sync(sheet: Sheet, started_at: datetime, *, reload: bool = False) -> SyncResult:
    """Fetch every row, page by page, upsert them all and drop the rows Smartsheet lacks.

    Pages keep memory flat on big sheets. If the sheet changes between pages, rows can shift
    across page boundaries, so a row could look deleted: the fetch starts over (3 tries).
    """
    before = {
        pk: (row_number, parent_id, modified_at)
        for pk, row_number, parent_id, modified_at in Row.objects.filter(
            sheet_id=sheet.pk
        ).values_list("pk", "row_number", "parent_id", "modified_at")
    }
    columns_before = store.structure(
        {c["id"]: c for c in Column.objects.filter(sheet_id=sheet.pk).values()}
    )
    # One page is fetched (and parsed) in a thread while the one before is stored.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sheet-{sheet.pk}-fetch") as pool:
        for _attempt in range(3):
            full = _full_pass(sheet.pk, before, pool)
            if full is not None:
                break
            logger.info("sheet %s changed during a full sync; starting over", sheet.pk)
        else:
            raise RuntimeError(f"sheet {sheet.pk} kept changing during a full sync; try again")
    result = SyncResult(
        sheet_id=sheet.pk,
        kind="full",
        version=full.version,
        added=full.added,
        changed=full.changed,
        deleted=[pk for pk in before if pk not in full.seen],
    )
    reload = reload or columns_before != store.structure(full.columns)
    with transaction.atomic():
        store.rows_delete(sheet.pk, result.deleted)
        _mark_synced(
            sheet.pk,
            started_at,
            result,
            name=full.head.get("name") or sheet.name,
            version=full.version,
            row_count=len(full.seen),
            permalink=full.head.get("permalink") or "",
        )
        _announce(result, reload=reload)
    return result


def _incremental_sync(sheet: Sheet, started_at: datetime) -> SyncResult:
    """Only the rows modified since the last sync, and nothing at all if the version is the same.

    Deleted rows are not reported by rowsModifiedSince. Rather than fetching every row id on
    every sync, compare counts: after upserting the modified rows the mirror must hold
    totalRowCount rows, and any deletion makes it hold more (an added row always shows up as
    modified). Only then, or when rows were added (which renumbers the rows below them), is the
    id list fetched — trimmed to the primary column with empty cells excluded, so it is one
    cheap call.
    """
    # One call does both: an unchanged sheet answers with just {"version": N} (ifVersionAfter),
    # a changed one with its columns and the rows modified since the last sync.
    since = sheet.sync_started_at - timedelta(seconds=settings.SHEETS_SYNC_CLOCK_SKEW)
    remote = client.sheet_get(
        sheet_id=sheet.pk,
        ifVersionAfter=sheet.version,
        rowsModifiedSince=since.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    if int(remote["version"]) < sheet.version:
        # Smartsheet went back (a sheet restored, a sandbox reset): ifVersionAfter would answer
        # "unchanged" until the sheet caught up, and rowsModifiedSince misses restored rows.
        logger.info(
            "sheet %s is at version %s, behind the mirror's %s; syncing it in full",
            sheet.pk,
            remote["version"],
            sheet.version,
        )
        return _full_sync(sheet, started_at, reload=True)
    if "columns" not in remote:
        result = SyncResult(sheet_id=sheet.pk, kind="unchanged", version=int(remote["version"]))
        _mark_synced(sheet.pk, started_at, result)
        return result

    columns = {int(c["id"]): store.column_fields(c) for c in remote["columns"]}
    mirrored = {c["id"]: c for c in Column.objects.filter(sheet_id=sheet.pk).values()}
    if store.structure(columns) != store.structure(mirrored):
        # Added, removed, renamed or retyped columns: every row's cells may read differently.
        return _full_sync(sheet, started_at, reload=True)

    rows = {int(r["id"]): store.row_fields(r) for r in remote.get("rows") or []}
    # By primary key alone: with the sheet in the filter too, SQLite walks the sheet's index.
    # In slices: SQLite caps the parameters of one query.
    ids = list(rows)
    current = {
        pk: (row_number, parent_id, modified_at, cells)
        for start in range(0, len(ids), 900)
        for pk, sheet_id, row_number, parent_id, modified_at, cells in Row.objects.filter(
            pk__in=ids[start : start + 900]
        ).values_list("pk", "sheet_id", "row_number", "parent_id", "modified_at", "cells")
        if sheet_id == sheet.pk
    }
    added = [pk for pk in rows if pk not in current]
    changed = [
        pk
        for pk, f in rows.items()
        if pk in current
        and current[pk] != (f["row_number"], f["parent_id"], f["modified_at"], f["cells"])
    ]
    upserts = {pk: rows[pk] for pk in (*added, *changed)}

    total = remote.get("totalRowCount")
    mirror_count = Row.objects.filter(sheet_id=sheet.pk).count() + len(added)
    deleted: list[int] = []
    moves: list[Row] = []
    if added or total is None or int(total) != mirror_count:
        primary = next((pk for pk, f in columns.items() if f["primary"]), None)
        listing = client.sheet_get(
            sheet_id=sheet.pk,
            **({"columnIds": [primary]} if primary else {}),
            exclude="nonexistentCells",
        )
        positions = {
            int(r["id"]): (int(r["rowNumber"]), int(r["parentId"]) if r.get("parentId") else None)
            for r in listing.get("rows") or []
        }
        for pk, row_number, parent_id in Row.objects.filter(sheet_id=sheet.pk).values_list(
            "pk", "row_number", "parent_id"
        ):
            if pk not in positions:
                deleted.append(pk)
            elif pk not in upserts and positions[pk] != (row_number, parent_id):
                moves.append(Row(id=pk, row_number=positions[pk][0], parent_id=positions[pk][1]))
        total = len(positions)

    result = SyncResult(
        sheet_id=sheet.pk,
        kind="incremental",
        version=int(remote["version"]),
        added=added,
        changed=changed,
        deleted=deleted,
    )
    with transaction.atomic():
        store.rows_upsert(sheet.pk, upserts)
        if moves:
            Row.objects.bulk_update(
                moves, ["row_number", "parent_id"], batch_size=store.UPSERT_BATCH
            )
        store.rows_delete(sheet.pk, deleted)
        _mark_synced(
            sheet.pk,
            started_at,
            result,
            name=remote.get("name") or sheet.name,
            version=result.version,
            row_count=int(total) if total is not None else mirror_count - len(deleted),
        )
        _announce(result)
    return result
