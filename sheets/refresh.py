"""The two ways one sheet's mirror is refreshed: in full (every page) or incrementally.

Called by sheets.sync.sheet_sync with the sheet's lock held. Every change is announced on the
sheet's group (see sheets/events.py) once its transaction commits.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sheets import client, store
from sheets.events import sheet_changed_send
from sheets.locks import SyncLock
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
    sheet_id: int, before: dict[int, tuple], pool: ThreadPoolExecutor, lock: SyncLock | None
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
        if lock is not None:
            lock.check()
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


def full_sync(
    sheet: Sheet, started_at: datetime, *, reload: bool = False, lock: SyncLock | None = None
) -> SyncResult:
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
            full = _full_pass(sheet.pk, before, pool, lock)
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
    if lock is not None:  # another sync may own the sheet by now
        lock.check()
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


def incremental_sync(
    sheet: Sheet, started_at: datetime, *, lock: SyncLock | None = None
) -> SyncResult:
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
        return full_sync(sheet, started_at, reload=True, lock=lock)
    if "columns" not in remote:
        result = SyncResult(sheet_id=sheet.pk, kind="unchanged", version=int(remote["version"]))
        _mark_synced(sheet.pk, started_at, result)
        return result

    columns = {int(c["id"]): store.column_fields(c) for c in remote["columns"]}
    mirrored = {c["id"]: c for c in Column.objects.filter(sheet_id=sheet.pk).values()}
    if store.structure(columns) != store.structure(mirrored):
        # Added, removed, renamed or retyped columns: every row's cells may read differently.
        return full_sync(sheet, started_at, reload=True, lock=lock)

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
    if lock is not None:  # another sync may own the sheet by now
        lock.check()
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
