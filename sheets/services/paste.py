"""A block copied from a spreadsheet (tab-separated) pasted onto a cell: one bulk write.

Each cell gets the same checks as a single edit: the column's type, and Smartsheet's current value
against the one the person saw (the `expected` grid from the page, else the mirror's). Cells that
fail are refused and reported; the rest go out in one update (≤ 500 rows a request, partial
success), each journaled as a CellEdit with source "paste".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from sheets import client
from sheets.client import SmartsheetUnavailable
from sheets.models import CellEdit, Column, Row, Sheet
from sheets.services.cells import (
    PENDING_MESSAGE,
    PasteResult,
    announce_rows,
    mirror_row_store,
    refusal_message,
    sheet_edit_lock,
    sheet_for_edit,
)
from sheets.services.cellvalues import (
    cell_display,
    cell_holds,
    cell_payload,
    remote_cells,
    sdk_row_dict,
    stored_value,
)
from sheets.services.rows import remote_rows
from sheets.validation import CellInvalid, cell_value_parse


def paste_block_parse(block: str) -> list[list[str]]:
    """Rows of cells from spreadsheet clipboard text (tabs, new lines, quoted multi-line cells)."""
    if block.endswith("\n"):
        block = block[:-1].removesuffix("\r")
    return [list(row) for row in csv.reader(io.StringIO(block), delimiter="\t")] or [[""]]


@dataclass
class _Target:
    row: Row
    column: Column
    value: Any
    expected: Any
    edit: CellEdit | None = None
    checked: bool = False  # compared with Smartsheet (then refused, unchanged, or to write)


def cells_paste(
    *,
    user,
    sheet_id: int,
    row_id: int,
    column_id: int,
    block: str,
    source: str = CellEdit.Source.PASTE,
    expected: list[list[Any]] | None = None,
) -> PasteResult:
    """Paste `block` with its top-left cell on (row_id, column_id); see PasteResult.summary()."""
    sheet = sheet_for_edit(user=user, sheet_id=sheet_id)
    grid = paste_block_parse(block)
    result = PasteResult()
    targets = _targets(sheet, row_id, column_id, grid, expected, result)
    if not targets:
        return result
    try:
        with sheet_edit_lock(sheet_id=sheet.pk):
            _paste_write(user, sheet, targets, source, result)
    except SmartsheetUnavailable as exc:
        _paste_keep_pending(user, sheet, targets, source, str(exc), result)
    return result


def _targets(
    sheet: Sheet,
    row_id: int,
    column_id: int,
    grid: list[list[str]],
    expected: list[list[Any]] | None,
    result: PasteResult,
) -> list[_Target]:
    start = Row.objects.get(pk=row_id, sheet=sheet)
    rows = list(
        Row.objects.filter(sheet=sheet, row_number__gte=start.row_number).order_by("row_number")[
            : len(grid)
        ]
    )
    columns = list(Column.objects.filter(sheet=sheet, hidden=False).order_by("index"))
    columns = columns[[c.pk for c in columns].index(column_id) :]
    targets = []
    for r, texts in enumerate(grid):
        for c, text in enumerate(texts):
            if r >= len(rows) or c >= len(columns):
                where = (rows[r].pk if r < len(rows) else None, None)
                result.refused.append(
                    (*where, "The block reaches past the sheet's last row or column.")
                )
                continue
            row, column = rows[r], columns[c]
            try:
                value = cell_value_parse(column=column, text=text)
            except CellInvalid as exc:
                result.refused.append((row.pk, column.pk, exc.message))
                continue
            seen = row.value(column.pk)
            if expected is not None and r < len(expected) and c < len(expected[r]):
                seen = expected[r][c]
            targets.append(_Target(row=row, column=column, value=value, expected=seen))
    return targets


def _journal(user, sheet: Sheet, target: _Target, source: str) -> CellEdit:
    new_value, new_formula = stored_value(target.value)
    return CellEdit(
        user=user,
        sheet=sheet,
        row_id=target.row.pk,
        column_id=target.column.pk,
        expected=target.expected,
        old_value=target.expected,
        old_display=target.row.display(target.column.pk),
        new_value=new_value,
        new_formula=new_formula,
        source=source,
    )


def _paste_write(user, sheet: Sheet, targets: list[_Target], source: str, result: PasteResult):
    current = remote_rows(sheet_id=sheet.pk, row_ids=list({t.row.pk: 0 for t in targets}))
    writes: dict[int, list[_Target]] = {}
    for target in targets:
        target.checked = True
        where = (target.row.pk, target.column.pk)
        remote = current.get(target.row.pk)
        if remote is None:
            result.refused.append((*where, "This row no longer exists in Smartsheet."))
            continue
        theirs = remote_cells(remote).get(target.column.pk, {})
        if cell_holds(theirs, target.value):
            result.unchanged.append(where)
        elif remote.get("locked"):
            result.refused.append((*where, refusal_message(1050, "locked row")))
        elif not cell_holds(theirs, target.expected):
            by = (remote.get("modifiedBy") or {}).get("name")
            result.refused.append(
                (*where, f"Changed in Smartsheet{f' by {by}' if by else ''} since you saw it.")
            )
        else:
            target.edit = _journal(user, sheet, target, source)
            target.edit.old_value = theirs.get("value")
            target.edit.old_formula = theirs.get("formula", "")
            target.edit.old_display = cell_display(theirs)
            writes.setdefault(target.row.pk, []).append(target)
    if not writes:
        return
    row_ids = list(writes)
    outcome = client.rows_update(
        sheet_id=sheet.pk,
        rows=[
            {"id": pk, "cells": [cell_payload(t.column, t.value) for t in writes[pk]]}
            for pk in row_ids
        ],
    )
    for failure in outcome.failures:
        for target in writes.pop(row_ids[failure.index]):
            message = refusal_message(failure.error_code, failure.message)
            result.refused.append((target.row.pk, target.column.pk, message))
    now = timezone.now()
    with transaction.atomic():
        for row in outcome.rows:
            written = sdk_row_dict(row)
            mirror_row_store(sheet_id=sheet.pk, row=written)
            cells = remote_cells(written)
            for target in writes.get(written["id"], ()):
                edit = target.edit
                edit.new_display = cell_display(cells.get(target.column.pk, {}))
                edit.status = CellEdit.Status.APPLIED
                edit.version = outcome.version
                edit.applied_at = now
                result.written.append((target.row.pk, target.column.pk))
        CellEdit.objects.bulk_create([t.edit for pk in writes for t in writes[pk]])
        announce_rows(sheet_id=sheet.pk, version=outcome.version, changed=list(writes))


def _paste_keep_pending(
    user, sheet: Sheet, targets: list[_Target], source: str, reason: str, result: PasteResult
):
    edits = []
    for target in targets:
        if target.checked and target.edit is None:
            continue  # already refused or unchanged before Smartsheet stopped answering
        edit = _journal(user, sheet, target, source)
        edit.status = CellEdit.Status.PENDING
        edit.error = reason[:500]
        edits.append(edit)
        result.pending.append((target.row.pk, target.column.pk))
    with transaction.atomic():
        CellEdit.objects.bulk_create(edits)
        announce_rows(sheet_id=sheet.pk, changed=sorted({e.row_id for e in edits}))
    result.message = PENDING_MESSAGE
