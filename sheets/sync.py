"""Keeping the mirror in step with Smartsheet: discovery, full sync and incremental sync.

Entry points: `sheets_discover`, `sheet_sync` (what the task, the poller and `sync_sheets` call)
and `sheet_sync_request` (debounced, for webhooks). Every change to the mirror is announced on
the sheet's group (see sheets/events.py) once its transaction commits.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from redis.exceptions import LockError

from core.ratelimit import redis_client
from sheets import client
from sheets.events import sheet_changed_send
from sheets.models import Column, Row, Sheet, SheetGrant

logger = logging.getLogger(__name__)

# A sync holds its sheet's lock at most this long (a full sync of 20,000 rows takes seconds).
SYNC_LOCK_TTL = 15 * 60
# Rows per INSERT: 6 parameters each stays under SQLite's 32,766 and PostgreSQL's 65,535.
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
            SheetGrant.objects.bulk_create(
                [SheetGrant(sheet=s, user=demo, role=SheetGrant.Role.EDIT) for s in sheets],
                ignore_conflicts=True,
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


def _column_fields(col: dict) -> dict:
    return {
        "index": int(col["index"]),
        "title": col.get("title") or "",
        "type": col.get("type") or "",
        "primary": bool(col.get("primary")),
        "options": list(col.get("options") or []),
        "system_column_type": col.get("systemColumnType") or "",
        "validation": bool(col.get("validation")),
        "hidden": bool(col.get("hidden")),
        "locked": bool(col.get("locked")),
        "width": int(col["width"]) if col.get("width") else None,
        "description": col.get("description") or "",
    }


_COLUMN_FIELDS = [f.name for f in Column._meta.concrete_fields if f.name not in ("id", "sheet")]
# What makes two column lists "the same structure" (width or description do not matter).
_STRUCTURE = ("index", "title", "type", "primary", "options")


def _structure(columns: dict[int, dict]) -> dict[int, tuple]:
    return {pk: tuple(str(f[k]) for k in _STRUCTURE) for pk, f in columns.items()}


_CELL_KEYS = frozenset(("value", "displayValue", "formula"))


def _row_fields(row: dict) -> dict:
    """The mirror's fields for one row of the API's JSON (whose cell dicts it takes over).

    Runs for every row of a full sync, so the common cell (nothing but value, displayValue or
    formula besides its columnId) is kept as it came rather than copied.
    """
    cells = {}
    for cell in row.get("cells") or ():
        column_id = cell.pop("columnId")
        if not cell:  # an empty cell
            continue
        if cell.keys() <= _CELL_KEYS:
            cells[str(column_id)] = cell
        else:  # hyperlinks, formats, images …: not mirrored
            compact = {k: cell[k] for k in _CELL_KEYS if cell.get(k) is not None}
            if compact:
                cells[str(column_id)] = compact
    modified = row.get("modifiedAt")
    parent = row.get("parentId")
    return {
        "row_number": int(row["rowNumber"]),
        "parent_id": int(parent) if parent else None,
        "modified_at": parse_datetime(modified) if modified else None,
        "cells": cells,
    }


def _rows_upsert(sheet_id: int, rows: dict[int, dict]) -> None:
    """Insert or update rows in one statement per batch.

    Plain SQL because this is the hot path of a full sync: the ORM's bulk_create(
    update_conflicts=True) spends ~75 µs per row preparing values and encoding JSON, more than
    the database spends storing it. The statement (INSERT … ON CONFLICT DO UPDATE) is the same
    on PostgreSQL and SQLite.
    """
    if not rows:
        return
    ops = connection.ops
    table = ops.quote_name(Row._meta.db_table)
    columns = "id, sheet_id, row_number, parent_id, modified_at, cells"
    # NULL-safe comparison (SQLite before 3.39 lacks IS DISTINCT FROM).
    differs = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    tail = (
        " ON CONFLICT (id) DO UPDATE SET sheet_id = excluded.sheet_id, "
        "row_number = excluded.row_number, parent_id = excluded.parent_id, "
        "modified_at = excluded.modified_at, cells = excluded.cells WHERE "
        # An unchanged row is left alone: no write, no dead tuple on PostgreSQL.
        f"{table}.row_number <> excluded.row_number OR {table}.cells <> excluded.cells OR "
        f"{table}.sheet_id <> excluded.sheet_id OR "
        f"{table}.parent_id {differs} excluded.parent_id OR "
        f"{table}.modified_at {differs} excluded.modified_at"
    )
    items = list(rows.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), _UPSERT_BATCH):
            batch = items[start : start + _UPSERT_BATCH]
            ids = [pk for pk, _ in batch]
            numbers = [f["row_number"] for _, f in batch]
            parents = [f["parent_id"] for _, f in batch]
            moments = [ops.adapt_datetimefield_value(f["modified_at"]) for _, f in batch]
            cells = [orjson.dumps(f["cells"]).decode() for _, f in batch]
            if connection.vendor == "postgresql":
                # Six array parameters whatever the batch size, sent in binary on a cursor that
                # binds on the server: Django's client-side binding quotes every JSON text with
                # a regex, five times slower than the whole insert.
                with psycopg.Cursor(connection.connection) as raw:
                    raw.execute(
                        f"INSERT INTO {table} ({columns}) SELECT i, %b, n, p, m, c::jsonb "  # noqa: S608
                        "FROM unnest(%b::bigint[], %b::integer[], %b::bigint[], "
                        "%b::timestamptz[], %b::text[]) AS u(i, n, p, m, c)" + tail,
                        [sheet_id, ids, numbers, parents, moments, cells],
                    )
            else:
                values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(batch))
                params = [
                    value
                    for row in zip(
                        ids, [sheet_id] * len(batch), numbers, parents, moments, cells, strict=True
                    )
                    for value in row
                ]
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES {values}" + tail,  # noqa: S608
                    params,
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
        columns={int(c["id"]): _column_fields(c) for c in remote["columns"]},
    )
    _columns_replace(sheet_id, full.columns)
    total = int(remote.get("totalRowCount") or 0)
    # Should Smartsheet send fewer rows than asked for, page by what it sends.
    per_page = len(remote.get("rows") or []) or size
    page = 1
    while True:
        more = page * per_page < total
        upcoming = pool.submit(fetch, page + 1) if more else None
        rows = {int(r["id"]): _row_fields(r) for r in remote.get("rows") or []}
        del remote
        with transaction.atomic():
            _rows_upsert(sheet_id, rows)
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
    columns_before = _structure(
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
    reload = reload or columns_before != _structure(full.columns)
    with transaction.atomic():
        _rows_delete(sheet.pk, result.deleted)
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
    if "columns" not in remote:
        result = SyncResult(sheet_id=sheet.pk, kind="unchanged", version=int(remote["version"]))
        _mark_synced(sheet.pk, started_at, result)
        return result

    columns = {int(c["id"]): _column_fields(c) for c in remote["columns"]}
    mirrored = {c["id"]: c for c in Column.objects.filter(sheet_id=sheet.pk).values()}
    if _structure(columns) != _structure(mirrored):
        # Added, removed, renamed or retyped columns: every row's cells may read differently.
        return _full_sync(sheet, started_at, reload=True)

    rows = {int(r["id"]): _row_fields(r) for r in remote.get("rows") or []}
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
        _rows_upsert(sheet.pk, upserts)
        if moves:
            Row.objects.bulk_update(moves, ["row_number", "parent_id"], batch_size=_UPSERT_BATCH)
        _rows_delete(sheet.pk, deleted)
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
