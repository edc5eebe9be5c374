"""Cell writes on a person's behalf, and the path every write to Smartsheet follows.

Every write here follows the same path (the grid, and later jobs, chat and MCP, all call these):
1. the user's grant on the sheet must be `edit` (PermissionDenied otherwise);
2. the typed text is checked against the column (sheets/validation.py);
3. the row is read from Smartsheet, not the mirror: webhooks arrive up to a minute late, so only
   Smartsheet can prove the cell still holds the value the person started from. If it does not,
   nothing is written and the result is a conflict carrying their value, who and when;
4. the write goes through sheets.client (per-sheet write lock, shared limiter, breaker);
5. the mirror row and the journal (CellEdit) are saved in one transaction, and the row is
   announced on the sheet's group once it commits.
When Smartsheet is unavailable the edit waits in the journal as `pending`; `pending_edits_apply`
(a beat task every minute) retries it with the same check. A request repeated after a lost answer
finds Smartsheet already holding its value and writes nothing ("unchanged").

Pasted blocks are in paste.py, row additions and deletions in rows.py, undo in undo.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from smartsheet.exceptions import ApiError

from core.ratelimit import redis_client
from sheets import client
from sheets.client import SmartsheetUnavailable
from sheets.events import sheet_changed_send
from sheets.models import CellEdit, Column, Row, RowEdit, Sheet
from sheets.selectors import sheet_role_for
from sheets.services.cellvalues import (
    cell_display,
    cell_holds,
    cell_payload,
    remote_cells,
    sdk_row_dict,
    stored_value,
)
from sheets.validation import CellInvalid, Formula, cell_value_parse

logger = logging.getLogger(__name__)

PENDING_MESSAGE = (
    "Smartsheet is not answering right now. Your change is saved here and will be written as "
    "soon as Smartsheet is back."
)
# What Smartsheet's refusals of a single cell mean for the person (codes from the API).
_REFUSALS = {
    1041: "The text is longer than Smartsheet allows in a cell; shorten it.",
    1042: "Smartsheet does not accept this value for the column's type; check the format.",
    1046: "Smartsheet fills this column itself; it cannot be edited.",
    1050: "This row is locked in Smartsheet; ask the sheet's owner to unlock it.",
    1006: "This row no longer exists in Smartsheet; reload the sheet.",
}


@dataclass
class CellResult:
    status: str  # "applied" | "conflict" | "pending" | "invalid" | "unchanged"
    edit: CellEdit | RowEdit | None  # the journal entry (None for invalid/unchanged)
    message: str = ""
    theirs: object = None
    theirs_display: str = ""
    theirs_by: str = ""
    theirs_at: datetime | None = None


@dataclass
class PasteResult:
    written: list[tuple[int, int]] = field(default_factory=list)
    refused: list[tuple[int, int, str]] = field(default_factory=list)
    pending: list[tuple[int, int]] = field(default_factory=list)
    unchanged: list[tuple[int, int]] = field(default_factory=list)
    message: str = ""  # why some cells wait, when Smartsheet is away

    def summary(self) -> str:
        parts = [f"{len(self.written)} cell(s) written"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already held the pasted value")
        if self.pending:
            parts.append(f"{len(self.pending)} waiting for Smartsheet")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return ", ".join(parts) + "."


# --- access and locking -----------------------------------------------------------------------


def sheet_for_edit(*, user, sheet_id: int) -> Sheet:
    """The sheet, if `user` may edit it; PermissionDenied (a 403) for viewers and strangers."""
    sheet = Sheet.objects.filter(pk=sheet_id).first()
    role = sheet_role_for(user=user, sheet=sheet) if sheet else None
    if role != "edit":
        raise PermissionDenied(
            "You can view this sheet but not change it; ask its owner for edit access."
            if role
            else "This sheet has not been shared with you."
        )
    return sheet


@contextmanager
def sheet_edit_lock(*, sheet_id: int) -> Iterator[None]:
    """Held from reading the row to saving the journal, so two of our writers cannot both pass
    the conflict check on the same value (Smartsheet itself offers no compare-and-set)."""
    lock = redis_client().lock(
        f"{settings.REDIS_PREFIX}:sheets:edit:{sheet_id}",
        timeout=settings.SMARTSHEET_WRITE_LOCK_TIMEOUT,
        blocking_timeout=settings.SMARTSHEET_WRITE_LOCK_TIMEOUT,
    )
    if not lock.acquire():
        raise SmartsheetUnavailable(f"another edit of sheet {sheet_id} is taking too long")
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:
            logger.warning("edit lock for sheet %s expired before release", sheet_id)


# --- the mirror and the grids ------------------------------------------------------------


def _wanted(edit: CellEdit) -> Any:
    return Formula(edit.new_formula) if edit.new_formula else edit.new_value


def mirror_row_store(*, sheet_id: int, row: dict[str, Any]) -> bool:
    """Merge a row read from (or written to) Smartsheet into the mirror; True if it changed.

    Call inside a transaction; the caller announces the row.
    """
    mirrored = Row.objects.select_for_update().filter(pk=row["id"], sheet_id=sheet_id).first()
    if mirrored is None:
        return False
    cells = dict(mirrored.cells)
    for column_id, cell in remote_cells(row).items():
        if cell:
            cells[str(column_id)] = cell
        else:
            cells.pop(str(column_id), None)
    modified = row.get("modifiedAt")
    if isinstance(modified, str):
        modified = parse_datetime(modified.replace("Z", "+00:00"))
    if cells == mirrored.cells and (modified is None or modified == mirrored.modified_at):
        return False
    mirrored.cells = cells
    mirrored.modified_at = modified or mirrored.modified_at
    mirrored.save(update_fields=["cells", "modified_at"])
    return True


def announce_rows(
    *, sheet_id: int, version: int | None = None, changed=(), added=(), deleted=()
) -> None:
    """Tell open grids (once the transaction commits) which rows to redraw."""
    transaction.on_commit(
        lambda: sheet_changed_send(
            sheet_id=sheet_id,
            version=version,
            changed=list(changed),
            added=list(added),
            deleted=list(deleted),
        )
    )


def _who(edit: CellEdit, row: dict[str, Any]) -> tuple[str, datetime | None]:
    """Who last changed the cell, and when: its history's newest entry (a conflict is rare, so
    its cost of 10 requests is worth a name that is right), else the row's last change."""
    try:
        history = client.cell_history_get(
            sheet_id=edit.sheet_id, row_id=edit.row_id, column_id=edit.column_id
        )
    except (ApiError, SmartsheetUnavailable) as exc:
        logger.info("no cell history for a conflict (%s); naming the row's last editor", exc)
        history = []
    if history:
        by, at = history[0].modified_by, history[0].modified_at
        return (by.name or by.email or "") if by else "", at
    by = row.get("modifiedBy") or {}
    name = by.get("name") or by.get("email") or ""
    at = row.get("modifiedAt")
    return name, parse_datetime(at.replace("Z", "+00:00")) if isinstance(at, str) else None


def refusal_message(code: int | None, message: str) -> str:
    logger.info("Smartsheet refused a cell write: %s %s", code, message)
    return _REFUSALS.get(code or 0, "Smartsheet refused this change; check the value and retry.")


# --- one cell ---------------------------------------------------------------------------------


def cell_update(
    *,
    user,
    sheet_id: int,
    row_id: int,
    column_id: int,
    text: str,
    expected: object,
    source: str = CellEdit.Source.GRID,
    force: bool = False,
) -> CellResult:
    """Write what `user` typed into one cell, unless Smartsheet's cell no longer holds `expected`.

    `force` is "Use mine" after a conflict: written over their value, still journaled.
    Raises PermissionDenied without an edit grant, Column.DoesNotExist for a foreign column.
    """
    sheet = sheet_for_edit(user=user, sheet_id=sheet_id)
    column = Column.objects.get(pk=column_id, sheet=sheet)
    try:
        value = cell_value_parse(column=column, text=text)
    except CellInvalid as exc:
        return CellResult(status="invalid", edit=None, message=exc.message)
    new_value, new_formula = stored_value(value)
    edit = CellEdit(
        user=user,
        sheet=sheet,
        row_id=row_id,
        column_id=column_id,
        expected=expected,
        old_value=expected,
        new_value=new_value,
        new_formula=new_formula,
        source=source,
        forced=force,
    )
    mirrored = Row.objects.filter(pk=row_id, sheet=sheet).first()
    if mirrored is not None:
        edit.old_display = mirrored.display(column_id)
    return edit_apply(edit=edit, column=column)


def edit_apply(*, edit: CellEdit, column: Column) -> CellResult:
    """Check and write one journal entry (new or pending); saves it with its outcome."""
    try:
        with sheet_edit_lock(sheet_id=edit.sheet_id):
            if (
                edit.pk is not None
                and not CellEdit.objects.filter(pk=edit.pk, status=CellEdit.Status.PENDING).exists()
            ):
                return CellResult(status="unchanged", edit=None)  # another worker applied it
            return _edit_apply_locked(edit, column)
    except SmartsheetUnavailable as exc:
        return _edit_keep_pending(edit, str(exc))


def _edit_keep_pending(edit: CellEdit, reason: str) -> CellResult:
    if edit.pk is None:
        # The same edit asked for again while Smartsheet is away: one journal entry, not two.
        twin = CellEdit.objects.filter(
            user=edit.user,
            sheet_id=edit.sheet_id,
            row_id=edit.row_id,
            column_id=edit.column_id,
            new_value=edit.new_value,
            new_formula=edit.new_formula,
            status=CellEdit.Status.PENDING,
        ).first()
        if twin is not None:
            return CellResult(status="pending", edit=twin, message=PENDING_MESSAGE)
    edit.error = reason[:500]
    if edit.pk is not None:  # still waiting: the grid shows it as pending already
        edit.save(update_fields=["error"])
        return CellResult(status="pending", edit=edit, message=PENDING_MESSAGE)
    edit.status = CellEdit.Status.PENDING
    with transaction.atomic():
        edit.save()
        announce_rows(sheet_id=edit.sheet_id, changed=[edit.row_id])
    logger.info("edit kept pending (%s)", reason)
    return CellResult(status="pending", edit=edit, message=PENDING_MESSAGE)


def _edit_apply_locked(edit: CellEdit, column: Column) -> CellResult:
    wanted = _wanted(edit)
    try:
        remote = client.row_get(sheet_id=edit.sheet_id, row_id=edit.row_id, include="writerInfo")
    except ApiError as exc:
        result = exc.error.result
        status = "conflict" if result.code == 1006 else "invalid"  # 1006: the row is gone
        return _edit_refused(edit, result.code, result.message, status=status)
    theirs = remote_cells(remote).get(column.id, {})
    if cell_holds(theirs, wanted):
        # Already there (a retried request, or someone typed the same): nothing to write.
        with transaction.atomic():
            if mirror_row_store(sheet_id=edit.sheet_id, row=remote):
                announce_rows(sheet_id=edit.sheet_id, changed=[edit.row_id])
            # A pending edit someone else's write already satisfied, or an undo whose cell was
            # put back meanwhile: done, and journaled as done.
            if edit.pk is not None or edit.undoes_id is not None:
                edit.status = CellEdit.Status.APPLIED
                edit.applied_at = timezone.now()
                edit.save()
        return CellResult(status="unchanged", edit=edit if edit.pk else None)
    if remote.get("locked"):
        return _edit_refused(edit, 1050, "locked row", status="invalid")
    if not edit.forced and not cell_holds(theirs, edit.expected):
        return _edit_conflict(edit, remote, theirs)
    edit.old_value = theirs.get("value")
    edit.old_formula = theirs.get("formula", "")
    edit.old_display = cell_display(theirs)
    outcome = client.rows_update(
        sheet_id=edit.sheet_id,
        rows=[{"id": edit.row_id, "cells": [cell_payload(column, wanted)]}],
    )
    if outcome.failures:
        failure = outcome.failures[0]
        return _edit_refused(edit, failure.error_code, failure.message, status="invalid")
    written = sdk_row_dict(outcome.rows[0])
    cell = remote_cells(written).get(column.id, {})
    edit.new_display = cell_display(cell)
    edit.status = CellEdit.Status.APPLIED
    edit.error = ""
    edit.version = outcome.version
    edit.applied_at = timezone.now()
    with transaction.atomic():
        mirror_row_store(sheet_id=edit.sheet_id, row=written)
        edit.save()
        announce_rows(sheet_id=edit.sheet_id, version=outcome.version, changed=[edit.row_id])
    return CellResult(status="applied", edit=edit)


def _edit_conflict(edit: CellEdit, remote: dict, theirs: dict) -> CellResult:
    by, at = _who(edit, remote)
    edit.status = CellEdit.Status.CONFLICT
    edit.old_value = theirs.get("value")
    edit.old_formula = theirs.get("formula", "")
    edit.old_display = cell_display(theirs)
    edit.error = "the cell changed in Smartsheet since the edit began"
    with transaction.atomic():
        if mirror_row_store(sheet_id=edit.sheet_id, row=remote):
            announce_rows(sheet_id=edit.sheet_id, changed=[edit.row_id])
        edit.save()
    who = f" by {by}" if by else ""
    return CellResult(
        status="conflict",
        edit=edit,
        message=f"This cell was changed{who} while you were editing it. Keep their value, or "
        "use yours.",
        theirs=theirs.get("formula") or theirs.get("value"),
        theirs_display=edit.old_display,
        theirs_by=by,
        theirs_at=at,
    )


def _edit_refused(edit: CellEdit, code: int | None, detail: str, *, status: str) -> CellResult:
    message = refusal_message(code, detail)
    edit.status = CellEdit.Status.CONFLICT if code == 1006 else CellEdit.Status.FAILED
    edit.error = f"{code}: {detail}"[:500]
    edit.save()
    return CellResult(status=status, edit=edit, message=message)


# --- pending edits ----------------------------------------------------------------------------


def pending_edits_apply(*, sheet_id: int | None = None) -> int:
    """Write the edits kept while Smartsheet was away, oldest first, each conflict-checked.

    Stops at the first edit Smartsheet still cannot take. Returns how many edits left `pending`.
    """
    pending = CellEdit.objects.filter(status=CellEdit.Status.PENDING).order_by("id")
    if sheet_id is not None:
        pending = pending.filter(sheet_id=sheet_id)
    columns: dict[int, Column | None] = {}
    done = 0
    for edit in pending.select_related("sheet"):
        if edit.column_id not in columns:
            columns[edit.column_id] = Column.objects.filter(
                pk=edit.column_id, sheet_id=edit.sheet_id
            ).first()
        column = columns[edit.column_id]
        if column is None:
            edit.status = CellEdit.Status.FAILED
            edit.error = "the column was deleted in Smartsheet"
            edit.save(update_fields=["status", "error"])
            done += 1
            continue
        result = edit_apply(edit=edit, column=column)
        if result.status == "pending":
            break
        done += 1
    return done
