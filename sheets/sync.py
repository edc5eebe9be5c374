"""Keeping the mirror in step with Smartsheet: discovery, full sync and incremental sync.

Entry points: `sheets_discover`, `sheet_sync` (what the task, the poller and `sync_sheets` call)
and `sheet_sync_request` (debounced, for webhooks). Every change to the mirror is announced on
the sheet's group (see sheets/events.py) once its transaction commits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from redis.exceptions import LockError

from core.ratelimit import redis_client
from sheets import client
from sheets.events import sheet_changed_send
from sheets.models import Column, Row, Sheet

logger = logging.getLogger(__name__)

# A sync holds its sheet's lock at most this long (a full sync of 20,000 rows takes seconds).
SYNC_LOCK_TTL = 15 * 60
_UPSERT_BATCH = 1000


@dataclass
class SyncResult:
    sheet_id: int
    kind: str  # "unchanged", "incremental", "full" or "skipped" (another sync was running)
    version: int | None = None
    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if self.kind in ("unchanged", "skipped"):
            return self.kind
        return (
            f"{self.kind}: {len(self.added)} added, {len(self.changed)} updated, "
            f"{len(self.deleted)} deleted"
        )


# --- Discovery --------------------------------------------------------------------------------


def sheets_discover(*, sheet_ids: list[int] | None = None) -> list[Sheet]:
    """Add sheets to the mirror: the given ids, or (None) every sheet the token can see.

    In sandbox mode the demo user is granted every sheet found, so the demo has data to show.
    """
    if sheet_ids is None:
        found = {int(s.id): s.name for s in client.sheets_list()}
    else:
        found = {int(i): "" for i in sheet_ids}
    existing = set(Sheet.objects.filter(pk__in=found).values_list("pk", flat=True))
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


# --- Sync -------------------------------------------------------------------------------------


def _pending_key(sheet_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:sheets:sync-pending:{sheet_id}"


def sheet_sync_request(*, sheet_id: int, countdown: float | None = None) -> bool:
    """Schedule an incremental sync soon; a burst of requests becomes one sync.

    Returns False when a sync is already scheduled (it will see this change too).
    """
    from sheets.tasks import sheet_sync_task

    delay = settings.SHEETS_SYNC_DEBOUNCE if countdown is None else countdown
    # The key outlives the countdown a little, so a lost task cannot block syncs for long.
    if not redis_client().set(_pending_key(sheet_id), "1", nx=True, ex=int(delay) + 60):
        return False
    sheet_sync_task.apply_async((sheet_id,), countdown=delay)
    return True


def sheet_sync_pending_clear(*, sheet_id: int) -> None:
    """Called as a scheduled sync starts: changes from now on need a sync of their own."""
    redis_client().delete(_pending_key(sheet_id))


def sheet_sync(*, sheet_id: int, full: bool = False, wait: float | None = 300) -> SyncResult:
    """Bring one sheet's mirror up to date; one sync per sheet at a time, across processes.

    `wait`: seconds to wait for a running sync of the same sheet (0: return "skipped" at once).
    Raises client.SmartsheetUnavailable or the SDK's ApiError; the sheet records the failure.
    """
    lock = redis_client().lock(
        f"{settings.REDIS_PREFIX}:sheets:sync:{sheet_id}",
        timeout=SYNC_LOCK_TTL,
        blocking=bool(wait),
        blocking_timeout=wait or None,
    )
    if not lock.acquire():
        return SyncResult(sheet_id=sheet_id, kind="skipped")
    calls_before = client.api_calls_made()
    began = time.monotonic()
    try:
        sheet = Sheet.objects.get(pk=sheet_id)
        Sheet.objects.filter(pk=sheet_id).update(sync_state=Sheet.SyncState.SYNCING)
        started_at = timezone.now()
        try:
            if full or sheet.version is None or sheet.sync_started_at is None:
                result = _full_sync(sheet, started_at)
            else:
                result = _incremental_sync(sheet, started_at)
        except Exception as exc:
            Sheet.objects.filter(pk=sheet_id).update(
                sync_state=Sheet.SyncState.FAILED,
                sync_outcome=f"{type(exc).__name__}: {exc}"[:500],
                synced_at=timezone.now(),
            )
            raise
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("sync lock for sheet %s expired before the sync ended", sheet_id)
    result.calls = client.api_calls_made() - calls_before
    result.seconds = time.monotonic() - began
    return result


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


def _column_fields(col) -> dict:
    return {
        "index": int(col.index),
        "title": col.title or "",
        "type": str(col.type) if col.type else "",
        "primary": bool(col.primary),
        "options": list(col.options or []),
        "system_column_type": str(col.system_column_type) if col.system_column_type else "",
        "validation": bool(col.validation),
        "hidden": bool(col.hidden),
        "locked": bool(col.locked),
        "width": int(col.width) if col.width else None,
        "description": col.description or "",
    }


_COLUMN_FIELDS = [f.name for f in Column._meta.concrete_fields if f.name not in ("id", "sheet")]
# What makes two column lists "the same structure" (width or description do not matter).
_STRUCTURE = ("index", "title", "type", "primary", "options")


def _structure(columns: dict[int, dict]) -> dict[int, tuple]:
    return {pk: tuple(str(f[k]) for k in _STRUCTURE) for pk, f in columns.items()}


def _row_fields(row) -> dict:
    cells = {}
    for cell in row.cells or []:
        compact = {}
        if cell.value is not None:
            compact["value"] = cell.value
        if cell.display_value is not None:
            compact["displayValue"] = cell.display_value
        if cell.formula:
            compact["formula"] = cell.formula
        if compact:
            cells[str(cell.column_id)] = compact
    return {
        "row_number": int(row.row_number),
        "parent_id": int(row.parent_id) if row.parent_id else None,
        "modified_at": row.modified_at,
        "cells": cells,
    }


def _rows_upsert(sheet_id: int, rows: dict[int, dict]) -> None:
    objs = [Row(id=pk, sheet_id=sheet_id, **fields) for pk, fields in rows.items()]
    Row.objects.bulk_create(
        objs,
        batch_size=_UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["sheet", "row_number", "parent_id", "modified_at", "cells"],
    )


def _rows_delete(sheet_id: int, ids: list[int]) -> None:
    for start in range(0, len(ids), 500):  # SQLite caps the parameters in one query
        Row.objects.filter(sheet_id=sheet_id, pk__in=ids[start : start + 500]).delete()


def _columns_replace(sheet_id: int, columns: dict[int, dict]) -> None:
    Column.objects.filter(sheet_id=sheet_id).exclude(pk__in=list(columns)).delete()
    Column.objects.bulk_create(
        [Column(id=pk, sheet_id=sheet_id, **fields) for pk, fields in columns.items()],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["sheet", *_COLUMN_FIELDS],
    )


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
    columns_before = _structure(
        {c["id"]: c for c in Column.objects.filter(sheet_id=sheet.pk).values()}
    )
    for _attempt in range(3):
        seen: set[int] = set()
        added: list[int] = []
        changed: list[int] = []
        page, version, stable = 1, None, True
        while True:
            remote = client.sheet_get(
                sheet_id=sheet.pk, page_size=settings.SHEETS_SYNC_PAGE_SIZE, page=page
            )
            if version is None:
                version = int(remote.version)
                head = remote
                columns = {int(c.id): _column_fields(c) for c in remote.columns}
                _columns_replace(sheet.pk, columns)
            elif int(remote.version) != version:
                stable = False
                break
            rows = {int(r.id): _row_fields(r) for r in remote.rows or []}
            with transaction.atomic():
                _rows_upsert(sheet.pk, rows)
            for pk, fields in rows.items():
                seen.add(pk)
                old = before.get(pk)
                if old is None:
                    added.append(pk)
                elif old != (fields["row_number"], fields["parent_id"], fields["modified_at"]):
                    changed.append(pk)
            del remote, rows
            total = int(head.total_row_count or 0)
            if len(seen) >= total or page * settings.SHEETS_SYNC_PAGE_SIZE >= total:
                break
            page += 1
        if stable:
            break
        logger.info("sheet %s changed during a full sync; starting over", sheet.pk)
    else:
        raise RuntimeError(f"sheet {sheet.pk} kept changing during a full sync; try again")
    deleted = [pk for pk in before if pk not in seen]
    result = SyncResult(
        sheet_id=sheet.pk, kind="full", version=version, added=added, changed=changed
    )
    result.deleted = deleted
    reload = reload or columns_before != _structure(columns)
    with transaction.atomic():
        _rows_delete(sheet.pk, deleted)
        _mark_synced(
            sheet.pk,
            started_at,
            result,
            name=head.name or sheet.name,
            version=version,
            row_count=len(seen),
            permalink=head.permalink or "",
        )
        _announce(result, reload=reload)
    return result


def _incremental_sync(sheet: Sheet, started_at: datetime) -> SyncResult:
    """Version check, then only the rows modified since the last sync.

    Deleted rows are not reported by rowsModifiedSince. Rather than fetching every row id on
    every sync, compare counts: after upserting the modified rows the mirror must hold
    totalRowCount rows, and any deletion makes it hold more (an added row always shows up as
    modified). Only then, or when rows were added (which renumbers the rows below them), is the
    id list fetched — trimmed to the primary column with empty cells excluded, so it is one
    cheap call.
    """
    version = client.sheet_version_get(sheet_id=sheet.pk)
    if version == sheet.version:
        result = SyncResult(sheet_id=sheet.pk, kind="unchanged", version=version)
        _mark_synced(sheet.pk, started_at, result)
        return result

    since = sheet.sync_started_at - timedelta(seconds=settings.SHEETS_SYNC_CLOCK_SKEW)
    remote = client.sheet_get(
        sheet_id=sheet.pk, rows_modified_since=since.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    columns = {int(c.id): _column_fields(c) for c in remote.columns}
    mirrored = {c["id"]: c for c in Column.objects.filter(sheet_id=sheet.pk).values()}
    if _structure(columns) != _structure(mirrored):
        # Added, removed, renamed or retyped columns: every row's cells may read differently.
        return _full_sync(sheet, started_at, reload=True)

    rows = {int(r.id): _row_fields(r) for r in remote.rows or []}
    current = {
        pk: (row_number, parent_id, modified_at, cells)
        for pk, row_number, parent_id, modified_at, cells in Row.objects.filter(
            sheet_id=sheet.pk, pk__in=list(rows)
        ).values_list("pk", "row_number", "parent_id", "modified_at", "cells")
    }
    added = [pk for pk in rows if pk not in current]
    changed = [
        pk
        for pk, f in rows.items()
        if pk in current
        and current[pk] != (f["row_number"], f["parent_id"], f["modified_at"], f["cells"])
    ]
    upserts = {pk: rows[pk] for pk in (*added, *changed)}

    total = remote.total_row_count
    mirror_count = Row.objects.filter(sheet_id=sheet.pk).count() + len(added)
    deleted: list[int] = []
    moves: list[Row] = []
    if added or total is None or int(total) != mirror_count:
        primary = next((pk for pk, f in columns.items() if f["primary"]), None)
        listing = client.sheet_get(
            sheet_id=sheet.pk,
            column_ids=[primary] if primary else None,
            exclude="nonexistentCells",
        )
        positions = {
            int(r.id): (int(r.row_number), int(r.parent_id) if r.parent_id else None)
            for r in listing.rows or []
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
        version=int(remote.version),
        added=added,
        changed=changed,
        deleted=deleted,
    )
    with transaction.atomic():
        _rows_upsert(sheet.pk, upserts)
        if moves:
            Row.objects.bulk_update(moves, ["row_number", "parent_id"], batch_size=_UPSERT_BATCH)
        _rows_delete(sheet.pk, deleted)
        _mark_synced(
            sheet.pk,
            started_at,
            result,
            name=remote.name or sheet.name,
            version=result.version,
            row_count=int(total) if total is not None else mirror_count - len(deleted),
        )
        _announce(result)
    return result


def sheets_poll() -> list[SyncResult]:
    """Sync every mirrored sheet whose webhook is not ENABLED (the polling fallback).

    A sheet being synced elsewhere is skipped; one that fails is logged and the rest go on.
    """
    results = []
    for sheet_id in Sheet.objects.exclude(webhook_status="ENABLED").values_list("pk", flat=True):
        try:
            results.append(sheet_sync(sheet_id=sheet_id, wait=0))
        except Exception:
            logger.exception("polling sync of sheet %s failed", sheet_id)
    return results
