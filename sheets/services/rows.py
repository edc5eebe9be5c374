"""Adding and deleting rows, journaled (RowEdit) so either can be undone.

A delete keeps every deleted row (children too, which Smartsheet deletes with their parent) as
Smartsheet held it, with where it stood, so its undo can put the rows back with their values.
Unlike a cell edit, a row change is not kept for later when Smartsheet is away: it is journaled
as failed (status and error on the RowEdit) and the person tries again.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from typing import Any

from django.db import transaction
from django.db.models import F

from sheets import client
from sheets.client import SmartsheetUnavailable
from sheets.models import CellEdit, Column, Row, RowEdit, Sheet
from sheets.services.cells import (
    announce_rows,
    sheet_edit_lock,
    sheet_for_edit,
)
from sheets.services.cellvalues import (
    cell_payload,
    mirror_cell,
    sdk_row_cells,
)
from sheets.validation import Formula

logger = logging.getLogger(__name__)

# Row ids per GET (they travel in the query string).
_IDS_PER_READ = 100


def remote_rows(*, sheet_id: int, row_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Rows as Smartsheet holds them now, by id (missing ones are left out)."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(row_ids), _IDS_PER_READ):
        data = client.sheet_get(
            sheet_id=sheet_id, rowIds=row_ids[start : start + _IDS_PER_READ], include="writerInfo"
        )
        found.update({int(r["id"]): r for r in data.get("rows") or ()})
    return found


def _mirror_row_insert(sheet: Sheet, row, *, cells: dict | None = None) -> None:
    """Put a row Smartsheet just added into the mirror, pushing the rows below it down."""
    number = int(row.row_number)
    Row.objects.filter(sheet=sheet, row_number__gte=number).update(row_number=F("row_number") + 1)
    Row.objects.create(
        id=int(row.id),
        sheet=sheet,
        row_number=number,
        parent_id=int(row.parent_id) if row.parent_id else None,
        modified_at=row.modified_at,
        cells=cells or {},
    )
    Sheet.objects.filter(pk=sheet.pk).update(row_count=F("row_count") + 1)


def mirror_rows_remove(sheet: Sheet, row_ids: list[int]) -> None:
    """Drop rows from the mirror and close the gaps they leave in the row numbers."""
    gone = sorted(
        Row.objects.filter(sheet=sheet, pk__in=row_ids).values_list("row_number", flat=True)
    )
    Row.objects.filter(sheet=sheet, pk__in=row_ids).delete()
    if not gone:
        return
    below = list(Row.objects.filter(sheet=sheet, row_number__gt=gone[0]).only("id", "row_number"))
    for row in below:
        row.row_number -= bisect_left(gone, row.row_number)
    Row.objects.bulk_update(below, ["row_number"], batch_size=1000)
    Sheet.objects.filter(pk=sheet.pk).update(row_count=F("row_count") - len(gone))


def row_add(
    *, user, sheet_id: int, below_row_id: int | None, source: str = CellEdit.Source.GRID
) -> RowEdit:
    """An empty row below `below_row_id` (after its children), or at the bottom when None."""
    sheet = sheet_for_edit(user=user, sheet_id=sheet_id)
    location = {"siblingId": below_row_id} if below_row_id else {"toBottom": True}
    try:
        outcome = client.rows_add(sheet_id=sheet.pk, rows=[{**location, "cells": []}])
    except SmartsheetUnavailable as exc:
        return _row_edit_failed(user, sheet, RowEdit.Kind.ADD, source, str(exc))
    if outcome.failures:
        failure = outcome.failures[0]
        error = f"{failure.error_code}: {failure.message}"
        return _row_edit_failed(user, sheet, RowEdit.Kind.ADD, source, error)
    added = outcome.rows[0]
    with transaction.atomic():
        _mirror_row_insert(sheet, added)
        edit = RowEdit.objects.create(
            user=user,
            sheet=sheet,
            kind=RowEdit.Kind.ADD,
            row_ids=[int(added.id)],
            source=source,
            version=outcome.version,
        )
        announce_rows(sheet_id=sheet.pk, version=outcome.version, added=[int(added.id)])
    return edit


def _family(sheet: Sheet, row_ids: list[int]) -> list[tuple[int, int | None, int]]:
    """(id, parent id, row number) of the rows and all their descendants, in sheet order."""
    rows = list(
        Row.objects.filter(sheet=sheet)
        .order_by("row_number")
        .values_list("pk", "parent_id", "row_number")
    )
    chosen = set(row_ids)
    family = []
    for pk, parent_id, number in rows:  # sheet order: a parent comes before its children
        if pk in chosen or parent_id in chosen:
            chosen.add(pk)
            family.append((pk, parent_id, number))
    return family


def _next_sibling(sheet: Sheet, parent_id: int | None, after: int, skip: set[int]) -> int | None:
    return (
        Row.objects.filter(sheet=sheet, parent_id=parent_id, row_number__gt=after)
        .exclude(pk__in=skip)
        .order_by("row_number")
        .values_list("pk", flat=True)
        .first()
    )


def rows_delete(
    *, user, sheet_id: int, row_ids: list[int], source: str = CellEdit.Source.GRID
) -> RowEdit:
    """Delete rows (and their children, as Smartsheet does), keeping them for an undo."""
    sheet = sheet_for_edit(user=user, sheet_id=sheet_id)
    family = _family(sheet, row_ids)
    ids = [pk for pk, _, _ in family]
    if not ids:
        return _row_edit_failed(user, sheet, RowEdit.Kind.DELETE, source, "no such rows")
    try:
        snapshot, deleted = _rows_snapshot_and_delete(sheet, family)
    except SmartsheetUnavailable as exc:
        return _row_edit_failed(user, sheet, RowEdit.Kind.DELETE, source, str(exc))
    with transaction.atomic():
        mirror_rows_remove(sheet, deleted)
        edit = RowEdit.objects.create(
            user=user,
            sheet=sheet,
            kind=RowEdit.Kind.DELETE,
            row_ids=deleted,
            rows=[r for r in snapshot if r["id"] in set(deleted)],
            source=source,
        )
        announce_rows(sheet_id=sheet.pk, deleted=deleted)
    return edit


def _rows_snapshot_and_delete(
    sheet: Sheet, family: list[tuple[int, int | None, int]]
) -> tuple[list[dict[str, Any]], list[int]]:
    """The rows as Smartsheet holds them (and where they stand), then deleted; raises
    SmartsheetUnavailable before anything is deleted if Smartsheet cannot be read."""
    ids = [pk for pk, _, _ in family]
    with sheet_edit_lock(sheet_id=sheet.pk):
        current = remote_rows(sheet_id=sheet.pk, row_ids=ids)
        snapshot = [
            {
                "id": pk,
                "parent_id": parent_id,
                # Where it goes back: above the next row that stays (the sibling after it).
                "next_id": _next_sibling(sheet, parent_id, number, set(ids)),
                "cells": {
                    str(c["columnId"]): mirror_cell(c)
                    for c in current[pk].get("cells") or ()
                    if mirror_cell(c)
                },
            }
            for pk, parent_id, number in family
            if pk in current
        ]
        return snapshot, client.rows_delete(sheet_id=sheet.pk, row_ids=ids)


def _row_edit_failed(user, sheet: Sheet, kind: str, source: str, error: str) -> RowEdit:
    logger.info("row %s on sheet %s failed: %s", kind, sheet.pk, error)
    return RowEdit.objects.create(
        user=user,
        sheet=sheet,
        kind=kind,
        source=source,
        status=RowEdit.Status.FAILED,
        error=error[:500],
    )


# --- undo -------------------------------------------------------------------------------------


def _cells_payload(columns: dict[str, Column], cells: dict[str, dict]) -> list[dict[str, Any]]:
    payload = []
    for column_id, cell in cells.items():
        column = columns.get(column_id)
        if column is None or column.system_column_type:
            continue  # a column deleted since, or one Smartsheet fills itself
        value = Formula(cell["formula"]) if cell.get("formula") else cell.get("value")
        if value is not None:
            payload.append(cell_payload(column, value))
    return payload


def _location(sheet: Sheet, row: dict[str, Any], new_ids: dict[int, int]) -> dict[str, Any]:
    parent = row["parent_id"]
    if parent in new_ids:
        return {"parentId": new_ids[parent], "toBottom": True}
    if row["next_id"] and Row.objects.filter(sheet=sheet, pk=row["next_id"]).exists():
        return {"siblingId": row["next_id"], "above": True}
    if parent and Row.objects.filter(sheet=sheet, pk=parent).exists():
        return {"parentId": parent, "toBottom": True}
    return {"toBottom": True}


def rows_restore(*, sheet: Sheet, rows: list[dict[str, Any]]) -> tuple[list[int], str]:
    """Add deleted rows back where they stood, with their values.

    Returns the new ids and, when not every row came back, why; raises SmartsheetUnavailable if
    none did. Smartsheet takes one location per request, so rows that go to the same place travel
    together, parents before children.
    """
    columns = {str(c.pk): c for c in Column.objects.filter(sheet=sheet)}
    new_ids: dict[int, int] = {}
    remaining = list(rows)
    error = ""
    while remaining:
        ready = [r for r in remaining if r["parent_id"] not in {x["id"] for x in remaining}]
        location = _location(sheet, ready[0], new_ids)
        batch = [r for r in ready if _location(sheet, r, new_ids) == location]
        try:
            outcome = client.rows_add(
                sheet_id=sheet.pk,
                rows=[{**location, "cells": _cells_payload(columns, r["cells"])} for r in batch],
            )
        except SmartsheetUnavailable as exc:
            if not new_ids:
                raise  # nothing done yet: the person can simply try again
            error = str(exc)
            break
        refused = {failure.index for failure in outcome.failures}
        if outcome.failures:
            error = "; ".join(f"{f.error_code}: {f.message}" for f in outcome.failures)
        accepted = [row for index, row in enumerate(batch) if index not in refused]
        with transaction.atomic():
            for row, added in zip(accepted, outcome.rows, strict=True):
                new_ids[row["id"]] = int(added.id)
                _mirror_row_insert(sheet, added, cells=sdk_row_cells(added))
        remaining = [r for r in remaining if r not in batch]
    return list(new_ids.values()), error[:500]
