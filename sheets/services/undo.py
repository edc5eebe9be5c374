"""Undo of journaled edits, itself journaled and conflict-checked.

A cell edit is undone only if the cell still holds what the edit wrote; otherwise the result is a
conflict showing what is there now. An added row is deleted only while it is still empty. Deleted
rows come back where they stood, with their values (as new rows: Smartsheet gives them new ids).
"""

from __future__ import annotations

import logging

from django.db import transaction

from sheets import client
from sheets.client import SmartsheetUnavailable
from sheets.models import CellEdit, Column, RowEdit
from sheets.services.cells import (
    CellResult,
    announce_rows,
    edit_apply,
    sheet_edit_lock,
    sheet_for_edit,
)
from sheets.services.cellvalues import (
    mirror_cell,
)
from sheets.services.rows import mirror_rows_remove, remote_rows, rows_restore

logger = logging.getLogger(__name__)

ALREADY_UNDONE = "This change has already been undone."
UNAVAILABLE = "Smartsheet is not answering right now; try the undo again in a minute."


def edit_undo(*, user, edit_id: int, kind: str = "cell") -> CellResult:
    """Undo one journal entry: a CellEdit (`kind="cell"`) or a RowEdit (`kind="row"`)."""
    if kind == "row":
        edit = RowEdit.objects.select_related("sheet").get(pk=edit_id)
        sheet_for_edit(user=user, sheet_id=edit.sheet_id)
        return _row_edit_undo(user, edit)
    edit = CellEdit.objects.select_related("sheet").get(pk=edit_id)
    sheet_for_edit(user=user, sheet_id=edit.sheet_id)
    return _cell_edit_undo(user, edit)


def last_edit_undo(*, user, sheet_id: int) -> CellResult | None:
    """Ctrl+Z: undo the user's own latest change on the sheet that is not undone yet.

    Undo entries themselves are skipped, so pressing it again goes one change further back.
    None when there is nothing left to undo.
    """
    sheet_for_edit(user=user, sheet_id=sheet_id)
    cell = (
        CellEdit.objects.filter(
            user=user,
            sheet_id=sheet_id,
            status__in=[CellEdit.Status.APPLIED, CellEdit.Status.PENDING],
        )
        .exclude(source=CellEdit.Source.UNDO)
        .exclude(undone_by__status=CellEdit.Status.APPLIED)
        .order_by("-created_at", "-id")
        .first()
    )
    row = (
        RowEdit.objects.filter(user=user, sheet_id=sheet_id, status=RowEdit.Status.APPLIED)
        .exclude(source=CellEdit.Source.UNDO)
        .exclude(undone_by__status=RowEdit.Status.APPLIED)
        .order_by("-created_at", "-id")
        .first()
    )
    if row is not None and (cell is None or row.created_at > cell.created_at):
        return _row_edit_undo(user, row)
    if cell is not None:
        return _cell_edit_undo(user, cell)
    return None


def _cell_edit_undo(user, edit: CellEdit) -> CellResult:
    if edit.undone_by.filter(status=CellEdit.Status.APPLIED).exists():
        return CellResult(status="unchanged", edit=None, message=ALREADY_UNDONE)
    if edit.status == CellEdit.Status.PENDING:
        # Never written: undoing it means not writing it.
        updated = CellEdit.objects.filter(pk=edit.pk, status=CellEdit.Status.PENDING).update(
            status=CellEdit.Status.FAILED, error="cancelled by undo before it was written"
        )
        if updated:
            edit.refresh_from_db()
            return CellResult(
                status="applied", edit=edit, message="The waiting change was dropped."
            )
        edit.refresh_from_db()  # the task wrote it meanwhile: undo the written change
    if edit.status != CellEdit.Status.APPLIED:
        return CellResult(
            status="invalid", edit=None, message="Only a change that was written can be undone."
        )
    column = Column.objects.filter(pk=edit.column_id, sheet_id=edit.sheet_id).first()
    if column is None:
        return CellResult(
            status="invalid", edit=None, message="The column of this change no longer exists."
        )
    undo = CellEdit(
        user=user,
        sheet_id=edit.sheet_id,
        row_id=edit.row_id,
        column_id=edit.column_id,
        # The check: the cell must still hold what the edit wrote.
        expected=edit.new_formula or edit.new_value,
        old_value=edit.new_value,
        old_formula=edit.new_formula,
        old_display=edit.new_display,
        new_value=edit.old_value,
        new_formula=edit.old_formula,
        new_display=edit.old_display,
        source=CellEdit.Source.UNDO,
        undoes=edit,
    )
    return edit_apply(edit=undo, column=column)


def _row_edit_undo(user, edit: RowEdit) -> CellResult:
    if edit.undone_by.filter(status=RowEdit.Status.APPLIED).exists():
        return CellResult(status="unchanged", edit=None, message=ALREADY_UNDONE)
    if edit.status != RowEdit.Status.APPLIED:
        return CellResult(
            status="invalid", edit=None, message="Only a change that was made can be undone."
        )
    sheet = edit.sheet
    if edit.kind == RowEdit.Kind.DELETE:
        try:
            with sheet_edit_lock(sheet_id=sheet.pk):
                new_ids, error = rows_restore(sheet=sheet, rows=edit.rows)
        except SmartsheetUnavailable:
            return CellResult(status="invalid", edit=None, message=UNAVAILABLE)
        if not new_ids:
            logger.info("undo of row edit %s put nothing back: %s", edit.pk, error)
            message = "Smartsheet did not take the rows back; try the undo again in a minute."
            return CellResult(status="invalid", edit=None, message=message)
        with transaction.atomic():
            # Applied even when only some rows came back: undoing again would add them twice.
            undo = RowEdit.objects.create(
                user=user,
                sheet=sheet,
                kind=RowEdit.Kind.ADD,
                row_ids=new_ids,
                source=CellEdit.Source.UNDO,
                error=error,
                undoes=edit,
            )
            announce_rows(sheet_id=sheet.pk, added=new_ids)
        message = f"{len(new_ids)} row(s) put back."
        if error:
            message = (
                f"Only {len(new_ids)} of {len(edit.rows)} rows were put back: Smartsheet "
                "refused or did not answer for the others."
            )
        return CellResult(status="applied", edit=undo, message=message)
    try:
        return _added_rows_remove(user, edit)
    except SmartsheetUnavailable:
        return CellResult(status="invalid", edit=None, message=UNAVAILABLE)


def _added_rows_remove(user, edit: RowEdit) -> CellResult:
    sheet = edit.sheet
    with sheet_edit_lock(sheet_id=sheet.pk):
        current = remote_rows(sheet_id=sheet.pk, row_ids=list(edit.row_ids))
        # Smartsheet fills system columns (created by, auto-number …) in every new row itself.
        system = {
            str(pk)
            for pk in Column.objects.filter(sheet=sheet)
            .exclude(system_column_type="")
            .values_list("pk", flat=True)
        }
        typed_into = [
            pk
            for pk, row in current.items()
            if any(
                mirror_cell(c) and str(c["columnId"]) not in system for c in row.get("cells") or ()
            )
        ]
        if typed_into:
            undo = RowEdit.objects.create(
                user=user,
                sheet=sheet,
                kind=RowEdit.Kind.DELETE,
                row_ids=typed_into,
                source=CellEdit.Source.UNDO,
                status=RowEdit.Status.CONFLICT,
                error="the added row has values now",
                undoes=edit,
            )
            return CellResult(
                status="conflict",
                edit=undo,
                message="Someone has filled in the added row since; delete it yourself if it "
                "should go.",
            )
        deleted = client.rows_delete(sheet_id=sheet.pk, row_ids=list(current)) if current else []
    with transaction.atomic():
        mirror_rows_remove(sheet, deleted)
        undo = RowEdit.objects.create(
            user=user,
            sheet=sheet,
            kind=RowEdit.Kind.DELETE,
            row_ids=deleted,
            source=CellEdit.Source.UNDO,
            undoes=edit,
        )
        announce_rows(sheet_id=sheet.pk, deleted=deleted)
    return CellResult(status="applied", edit=undo, message="The added row was removed.")
