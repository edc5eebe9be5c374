"""Row writes with Smartsheet's rules: cell validation, locked rows and columns, one shared location
per request, partial success, history for every cell written, and the skinny events webhooks report.

Locked rows and columns stop editors, not the sheet's owner or admins (as in Smartsheet).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sandbox.smartsheet.cells import coerce_cell
from sandbox.smartsheet.formulas import compile_formula, formulas_recompute
from sandbox.smartsheet.model import (
    MAX_ROWS_PER_REQUEST,
    ApiError,
    Cell,
    Row,
    Sheet,
    User,
    iso,
    missing_attribute,
    not_allowed,
    unparseable,
)

LOCATION_KEYS = ("toTop", "toBottom", "parentId", "siblingId", "above")
ROW_WRITABLE = {"id", "cells", "expanded", "locked", *LOCATION_KEYS}
# Read-only attributes a client may echo back from a read; Smartsheet ignores them on writes.
ROW_READ_ONLY = {
    "sheetId",
    "rowNumber",
    "version",
    "createdAt",
    "modifiedAt",
    "createdBy",
    "modifiedBy",
    "permalink",
    "accessLevel",
    "filteredOut",
    "inCriticalPath",
    "lockedForUser",
    "conditionalFormat",
    "columns",
}


def locked_row() -> ApiError:
    return ApiError(403, 1050, "You cannot edit a locked row.")


@dataclass
class Change:
    """What one request did, for the answer and for webhook events."""

    user: User
    moment: datetime
    change_agent: str | None
    admin: bool = True  # owner or admin: may edit locked rows/columns and override validation
    override_validation: bool = False  # the request's ?overrideValidation=true
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, object_type: str, event_type: str, **ids: int) -> None:
        event: dict[str, Any] = {"objectType": object_type, "eventType": event_type, **ids}
        event["userId"] = self.user.id
        event["timestamp"] = iso(self.moment)
        if self.change_agent:
            event["changeAgent"] = self.change_agent
        self.events.append(event)


def row_list(body: Any) -> list[dict[str, Any]]:
    rows = body if isinstance(body, list) else [body]
    if not all(isinstance(row, dict) for row in rows):
        raise unparseable("each row must be a JSON object.")
    if len(rows) > MAX_ROWS_PER_REQUEST:
        raise ApiError(400, 1061, "Max count exceeded for field rows.")
    return rows


def _location(row: dict[str, Any]) -> tuple[Any, ...] | None:
    if not any(row.get(key) not in (None, False) for key in LOCATION_KEYS):
        return None
    return tuple(row.get(key) or None for key in LOCATION_KEYS)


def shared_location(rows: list[dict[str, Any]], *, moving: bool) -> tuple[Any, ...] | None:
    """The one location every row uses (1123 if they differ); None = default/unchanged."""
    locations = {_location(row) for row in rows}
    if moving:
        locations.discard(None)
    if len(locations) > 1:
        raise ApiError(
            400,
            1123,
            "Specifying multiple row locations is not yet supported. Each row must use the same "
            "row location attribute and value (toBottom, toTop, parentId, siblingId, above).",
        )
    return next(iter(locations), None)


def insertion_index(
    sheet: Sheet, location: tuple[Any, ...] | None, moved: set[int] = frozenset()
) -> tuple[int, int | None]:
    """Where a block of rows goes, and the parent it gets; raises 1062-1064."""
    if location is None:
        return len(sheet.rows), None
    to_top, to_bottom, parent_id, sibling_id, above = location
    if (to_top and to_bottom) or (sibling_id and (parent_id or to_top or to_bottom)):
        raise ApiError(400, 1062, "Invalid row location.")
    if above and not sibling_id:
        raise ApiError(400, 1062, "Invalid row location.")
    if parent_id:
        parent = sheet.rows_by_id.get(parent_id) if isinstance(parent_id, int) else None
        if (
            parent is None
            or parent_id in moved
            or any(sheet.is_descendant(parent_id, row_id) for row_id in moved)
        ):
            raise ApiError(400, 1063, f"Invalid parentId: {parent_id}.")
        index = sheet.positions[parent_id]
        if to_top:
            return index + 1, parent_id
        return sheet.subtree_end(index), parent_id
    if sibling_id:
        sibling = sheet.rows_by_id.get(sibling_id) if isinstance(sibling_id, int) else None
        if sibling is None or sibling_id in moved:
            raise ApiError(400, 1064, f"Invalid siblingId: {sibling_id}.")
        index = sheet.positions[sibling_id]
        return (index if above else sheet.subtree_end(index)), sibling.parent_id
    if to_top:
        return 0, None
    return len(sheet.rows), None


def _check_row(row: dict[str, Any], change: Change, locked: bool = False) -> None:
    """Refuse attributes the sandbox does not store, and (un)locking by someone not an admin."""
    refused = [f"row.{name}" for name in row if name not in ROW_WRITABLE | ROW_READ_ONLY]
    if refused:
        raise not_allowed(refused)
    wanted = row.get("locked")
    if isinstance(wanted, bool) and wanted != locked and not change.admin:
        raise ApiError(403, 1004, "You are not authorized to perform this action.")
    if locked and not change.admin:
        raise locked_row()


def _cells(
    sheet: Sheet, row: dict[str, Any], directory: dict[str, User], change: Change
) -> dict[int, Cell | None]:
    """Validated cells of one request row: columnId → stored cell, or None to clear."""
    row_id = row.get("id")
    current = sheet.rows_by_id.get(row_id) if isinstance(row_id, int) else None
    _check_row(row, change, locked=current is not None and current.locked)
    cells = row.get("cells") or []
    if not isinstance(cells, list):
        raise unparseable("row.cells must be an array.")
    result: dict[int, Cell | None] = {}
    for cell in cells:
        if not isinstance(cell, dict):
            raise unparseable("each cell must be a JSON object.")
        column_id = cell.get("columnId")
        if column_id is None:
            raise missing_attribute("cell.columnId")
        column = sheet.column(column_id) if isinstance(column_id, int) else None
        if column is None:
            raise ApiError(400, 1036, f"The columnId {column_id} is invalid.")
        if column_id in result:
            raise ApiError(
                400, 1037, f"The columnId {column_id} is included more than once in a single row."
            )
        if column.locked and not change.admin:
            raise ApiError(403, 1039, f"Cannot edit a locked column {column_id}")
        stored = coerce_cell(
            column,
            cell,
            directory,
            admin=change.admin,
            override_validation=change.override_validation,
        )
        if stored is not None and len(stored) > 2 and "formula" in stored[2]:
            program = compile_formula(stored[2]["formula"], sheet.columns)
            stored = (None, None, {**stored[2], "program": program})
        result[column_id] = stored
    return result


def _same(old: Cell | None, new: Cell | None) -> bool:
    """Whether a write leaves the cell as it is (a formula compares by its text)."""
    if old is None or new is None or len(new) < 3 or "formula" not in new[2]:
        return old == new
    return len(old) > 2 and old[2].get("formula") == new[2]["formula"]


def _has_formula(cells: dict[int, Cell]) -> bool:
    return any(len(cell) > 2 and "formula" in cell[2] for cell in cells.values())


def _fail(index: int, row_id: int | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"index": index}
    if row_id is not None:
        detail["rowId"] = row_id
    return detail


def _check(
    prepared: list[tuple[int, Any]], partial: bool
) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """Split prepared rows into good ones and failedItems; without partial success, raise."""
    good, failed = [], []
    for index, item in prepared:
        if isinstance(item, tuple) and isinstance(item[0], ApiError):
            error, row_id = item
            detail = _fail(index, row_id)
            if not partial:
                raise ApiError(error.status, error.code, error.message, detail)
            failed.append({**detail, "error": error})
        else:
            good.append((index, item))
    return good, failed


def add_rows(
    sheet: Sheet,
    body: Any,
    *,
    partial: bool,
    change: Change,
    new_id: Any,
    directory: dict[str, User],
) -> tuple[list[Row], list[dict[str, Any]]]:
    rows = row_list(body)
    location = shared_location(rows, moving=False)
    index, parent_id = insertion_index(sheet, location)
    prepared: list[tuple[int, Any]] = []
    for position, row in enumerate(rows):
        try:
            prepared.append((position, _cells(sheet, row, directory, change)))
        except ApiError as error:
            prepared.append((position, (error, None)))
    good, failed = _check(prepared, partial)
    created = []
    for position, cells in good:
        requested = rows[position]
        row = Row(
            id=new_id(),
            parent_id=parent_id,
            created_at=change.moment,
            modified_at=change.moment,
            created_by=change.user,
            modified_by=change.user,
            cells={cid: cell for cid, cell in cells.items() if cell is not None},
            locked=requested.get("locked") is True,
            expanded=requested.get("expanded") is not False,
        )
        created.append(row)
        if _has_formula(row.cells):
            sheet.formula_rows.add(row.id)
        change.event("row", "created", id=row.id)
    if created:
        sheet.rows[index:index] = created
        sheet.rows_by_id.update({row.id: row for row in created})
        sheet.structure_changed()
        formulas_recompute(sheet=sheet)
        created = [sheet.rows_by_id[row.id] for row in created]
        for row in created:
            for column_id, cell in row.cells.items():
                # One history entry per cell of a new row (its value as computed, for formulas).
                sheet.record_history(
                    row, sheet.column(column_id), cell, change.moment, change.user, new_row=True
                )
                change.event("cell", "created", rowId=row.id, columnId=column_id)
        sheet.touch(change.moment)
        change.event("sheet", "updated", id=sheet.id)
    return created, failed


def update_rows(
    sheet: Sheet,
    body: Any,
    *,
    partial: bool,
    change: Change,
    directory: dict[str, User],
) -> tuple[list[Row], list[dict[str, Any]]]:
    rows = row_list(body)
    location = shared_location(rows, moving=True)
    prepared: list[tuple[int, Any]] = []
    for position, row in enumerate(rows):
        row_id = row.get("id")
        try:
            if row_id is None:
                raise missing_attribute("row.id")
            if not isinstance(row_id, int) or row_id not in sheet.rows_by_id:
                raise ApiError(404, 1006, "Not Found")
            prepared.append((position, (row_id, row, _cells(sheet, row, directory, change))))
        except ApiError as error:
            prepared.append((position, (error, row_id if isinstance(row_id, int) else None)))
    good, failed = _check(prepared, partial)
    moving = [row_id for _, (row_id, row, _) in good if _location(row) is not None]
    if moving:
        _move(sheet, moving, location)
    updated: list[Row] = []
    written_formulas: list[tuple[int, int]] = []
    for _, (row_id, request_row, cells) in good:
        old = sheet.rows_by_id[row_id]
        new_cells = dict(old.cells)
        changed = row_id in moving
        for column_id, cell in cells.items():
            if _same(old.cells.get(column_id), cell):
                continue
            changed = True
            if cell is not None and len(cell) > 2 and "formula" in cell[2]:
                written_formulas.append((row_id, column_id))
            sheet.record_history(old, sheet.column(column_id), cell, change.moment, change.user)
            if cell is None:
                new_cells.pop(column_id, None)
            else:
                new_cells[column_id] = cell
            change.event("cell", "updated", rowId=row_id, columnId=column_id)
        expanded = request_row.get("expanded", old.expanded)
        if isinstance(expanded, bool) and expanded != old.expanded:
            changed = True
        else:
            expanded = old.expanded
        locked = request_row.get("locked", old.locked)
        if isinstance(locked, bool) and locked != old.locked:
            changed = True
        else:
            locked = old.locked
        if _has_formula(new_cells):
            sheet.formula_rows.add(row_id)
        else:
            sheet.formula_rows.discard(row_id)
        if changed:
            new = replace(
                old,
                cells=new_cells,
                expanded=expanded,
                locked=locked,
                modified_at=change.moment,
                modified_by=change.user,
                wire_cells=None,
            )
            sheet.replace_row(new)
            change.event("row", "updated", id=row_id)
            updated.append(new)
        else:
            updated.append(old)
    if change.events:
        formulas_recompute(sheet=sheet)
        updated = [sheet.rows_by_id[row.id] for row in updated]
        for row_id, column_id in written_formulas:
            # History shows what the formula computed, not the placeholder it was written with.
            value, display = sheet.rows_by_id[row_id].cells[column_id][:2]
            entry = sheet.history[(row_id, column_id)][-1]
            entry.value, entry.display_value = value, display
        sheet.touch(change.moment)
        change.event("sheet", "updated", id=sheet.id)
    return updated, failed


def _move(sheet: Sheet, row_ids: list[int], location: tuple[Any, ...] | None) -> None:
    """Move rows (each with its children) as one block to `location`, in request order."""
    moved = set(row_ids)
    # A row whose ancestor also moves travels with that ancestor.
    tops = [rid for rid in row_ids if not any(sheet.is_descendant(rid, a) for a in moved)]
    insertion_index(sheet, location, moved)  # validate against the sheet before taking rows out
    block: list[Row] = []
    for row_id in tops:
        start = sheet.positions[row_id]
        end = sheet.subtree_end(start)
        block.extend(sheet.rows[start:end])
        del sheet.rows[start:end]
        sheet.structure_changed()
    index, parent_id = insertion_index(sheet, location, moved)
    for position, row in enumerate(block):
        if row.id in tops and row.parent_id != parent_id:
            block[position] = replace(row, parent_id=parent_id)
            sheet.rows_by_id[row.id] = block[position]
    sheet.rows[index:index] = block
    sheet.structure_changed()


def delete_rows(
    sheet: Sheet, row_ids: list[int], *, ignore_missing: bool, change: Change
) -> list[int]:
    missing = [row_id for row_id in row_ids if row_id not in sheet.rows_by_id]
    if missing and not ignore_missing:
        raise ApiError(404, 1006, "Not Found")
    if not change.admin:
        for row_id in row_ids:
            if row_id in sheet.rows_by_id:
                start = sheet.positions[row_id]
                if any(row.locked for row in sheet.rows[start : sheet.subtree_end(start)]):
                    raise ApiError(
                        403,
                        1092,
                        "You cannot delete this row. Either it or one or more of its children "
                        "are locked.",
                    )
    deleted: list[int] = []
    for row_id in row_ids:
        if row_id not in sheet.rows_by_id:
            continue  # missing, or a child of a row deleted just before
        start = sheet.positions[row_id]
        end = sheet.subtree_end(start)
        for row in sheet.rows[start:end]:
            deleted.append(row.id)
            del sheet.rows_by_id[row.id]
            change.event("row", "deleted", id=row.id)
        del sheet.rows[start:end]
        sheet.structure_changed()
    if deleted:
        sheet.formula_rows.difference_update(deleted)
        formulas_recompute(sheet=sheet)
        sheet.touch(change.moment)
        change.event("sheet", "updated", id=sheet.id)
    return deleted
