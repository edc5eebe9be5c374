"""Write tools: cells and rows. Each handler only proposes (old → new, rows to add or delete);
its applier runs the grid's services (grant, conflict check against the old values shown,
journal with the caller's source) once the person agreed.
"""

from __future__ import annotations

from typing import Any

from chat.tools.reads import SHEET_ID, cell_shown, column_named, row_find
from chat.tools.registry import Outcome, Proposal, ToolContext, ToolError, applier, tool
from sheets import services as sheet_services
from sheets.models import Column, Row, Sheet
from sheets.validation import CellInvalid, cell_value_parse, column_read_only_reason

MAX_CELLS = 50
MAX_NEW_ROWS = 20
MAX_DELETED_ROWS = 50

ROW_REF = {
    "row_id": {"type": ["integer", "null"], "description": "The row id (from query_rows)."},
    "row_number": {
        "type": ["integer", "null"],
        "description": "Or the row's number in the sheet, when the id is unknown.",
    },
}


def _columns(sheet: Sheet) -> list[Column]:
    return list(Column.objects.filter(sheet=sheet).order_by("index"))


def _writable(column: Column) -> Column:
    reason = column_read_only_reason(column)
    if reason:
        raise ToolError(reason)
    return column


def _parsed(column: Column, value: str) -> None:
    try:
        cell_value_parse(column=column, text=value)
    except CellInvalid as exc:
        raise ToolError(f"“{column.title}”: {exc.message}") from exc


def _label(row: Row, columns: list[Column]) -> str:
    primary = next((c for c in columns if c.primary), columns[0] if columns else None)
    shown = cell_shown(row, primary) if primary else ""
    return f"row {row.row_number}" + (f" ({shown})" if shown not in (None, "") else "")


# --- update_cells -----------------------------------------------------------------------------


@tool(
    name="update_cells",
    description=(
        "Propose new values for cells of a sheet. Nothing changes until the user presses Apply "
        "on the change shown to them; you are told the outcome."
    ),
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "changes": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_CELLS,
                "items": {
                    "type": "object",
                    "properties": {
                        **ROW_REF,
                        "column": {"type": "string", "description": "The column title."},
                        "value": {"type": "string", "description": "The new value, as typed."},
                    },
                    "required": ["row_id", "row_number", "column", "value"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["sheet_id", "changes"],
        "additionalProperties": False,
    },
    writes=True,
    needs="edit",
)
def update_cells(context: ToolContext, sheet: Sheet, *, changes: list[dict]) -> Proposal:
    columns = _columns(sheet)
    cells = []
    for change in changes:
        row = row_find(sheet=sheet, row_id=change["row_id"], row_number=change["row_number"])
        column = _writable(column_named(columns, change["column"]))
        _parsed(column, change["value"])
        cell = row.cells.get(str(column.pk)) or {}
        shown = cell_shown(row, column)
        cells.append(
            {
                "row_id": row.pk,
                "row_number": row.row_number,
                "row": _label(row, columns),
                "column_id": column.pk,
                "column": column.title,
                "old": cell.get("value"),
                "old_display": "" if shown is None else str(shown),
                "new": change["value"],
            }
        )
    count = len(cells)
    summary = (
        f"Set {cells[0]['column']} of {cells[0]['row']} to “{cells[0]['new']}”"
        if count == 1
        else f"Change {count} cells"
    ) + f" in {sheet.name}"
    return Proposal(summary=summary, preview={"sheet_id": sheet.pk, "cells": cells})


@applier("update_cells")
def update_cells_apply(context: ToolContext, sheet: Sheet, preview: dict) -> Outcome:
    results = []
    for cell in preview["cells"]:
        result = sheet_services.cell_update(
            user=context.user,
            sheet_id=sheet.pk,
            row_id=cell["row_id"],
            column_id=cell["column_id"],
            text=cell["new"],
            expected=cell["old"],
            source=context.source,
        )
        results.append(
            {
                "row": cell["row"],
                "column": cell["column"],
                "status": result.status,
                "message": result.message,
                "theirs": result.theirs_display if result.status == "conflict" else None,
            }
        )
    return _cells_outcome(results)


def _cells_outcome(results: list[dict[str, Any]]) -> Outcome:
    done = [r for r in results if r["status"] in ("applied", "unchanged", "pending")]
    conflicts = [r for r in results if r["status"] == "conflict"]
    failed = [
        r for r in results if r["status"] not in ("applied", "unchanged", "pending", "conflict")
    ]
    waiting = [r for r in results if r["status"] == "pending"]
    parts = [f"{len(done)} of {len(results)} cell(s) written"]
    if waiting:
        parts.append(f"{len(waiting)} waiting for Smartsheet (written when it answers)")
    for r in conflicts:
        theirs = f" (now “{r['theirs']}”)" if r["theirs"] else ""
        parts.append(f"{r['column']} of {r['row']} was changed by someone else meanwhile{theirs}")
    for r in failed:
        parts.append(f"{r['column']} of {r['row']}: {r['message'] or 'refused'}")
    if len(done) == len(results):
        status = "applied"
    elif not done:
        status = "conflict" if conflicts and not failed else "failed"
    else:
        status = "partial"
    return Outcome(status=status, text="; ".join(parts) + ".", detail={"cells": results})


# --- add_rows ---------------------------------------------------------------------------------


@tool(
    name="add_rows",
    description=(
        "Propose new rows at the bottom of a sheet, each with values for some columns. Nothing "
        "is added until the user presses Apply."
    ),
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_NEW_ROWS,
                "items": {
                    "type": "object",
                    "properties": {
                        "cells": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "column": {"type": "string"},
                                    "value": {"type": "string"},
                                },
                                "required": ["column", "value"],
                                "additionalProperties": False,
                            },
                        }
                    },
                    "required": ["cells"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["sheet_id", "rows"],
        "additionalProperties": False,
    },
    writes=True,
    needs="edit",
)
def add_rows(context: ToolContext, sheet: Sheet, *, rows: list[dict]) -> Proposal:
    columns = _columns(sheet)
    new_rows = []
    for row in rows:
        cells = []
        for cell in row["cells"]:
            column = _writable(column_named(columns, cell["column"]))
            _parsed(column, cell["value"])
            cells.append({"column_id": column.pk, "column": column.title, "value": cell["value"]})
        new_rows.append({"cells": cells})
    noun = "row" if len(new_rows) == 1 else "rows"
    return Proposal(
        summary=f"Add {len(new_rows)} {noun} to {sheet.name}",
        preview={"sheet_id": sheet.pk, "rows": new_rows},
    )


@applier("add_rows")
def add_rows_apply(context: ToolContext, sheet: Sheet, preview: dict) -> Outcome:
    added, problems = [], []
    for new in preview["rows"]:
        edit = sheet_services.row_add(
            user=context.user, sheet_id=sheet.pk, below_row_id=None, source=context.source
        )
        if not edit.row_ids:
            problems.append(edit.error or "Smartsheet refused the new row")
            continue
        row_id = edit.row_ids[0]
        added.append(row_id)
        for cell in new["cells"]:
            result = sheet_services.cell_update(
                user=context.user,
                sheet_id=sheet.pk,
                row_id=row_id,
                column_id=cell["column_id"],
                text=cell["value"],
                expected=None,
                source=context.source,
            )
            if result.status not in ("applied", "unchanged", "pending"):
                problems.append(f"{cell['column']}: {result.message or result.status}")
    text = f"{len(added)} of {len(preview['rows'])} row(s) added"
    if problems:
        text += "; " + "; ".join(problems)
    status = "applied" if not problems else ("partial" if added else "failed")
    return Outcome(status=status, text=text + ".", detail={"row_ids": added})


# --- delete_rows ------------------------------------------------------------------------------


@tool(
    name="delete_rows",
    description=(
        "Propose deleting rows of a sheet (their child rows go with them). Nothing is deleted "
        "until the user presses Apply."
    ),
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "row_ids": {
                "type": ["array", "null"],
                "items": {"type": "integer"},
                "maxItems": MAX_DELETED_ROWS,
            },
            "row_numbers": {
                "type": ["array", "null"],
                "items": {"type": "integer"},
                "maxItems": MAX_DELETED_ROWS,
                "description": "Or the rows' numbers in the sheet, when the ids are unknown.",
            },
        },
        "required": ["sheet_id", "row_ids", "row_numbers"],
        "additionalProperties": False,
    },
    writes=True,
    needs="edit",
)
def delete_rows(
    context: ToolContext,
    sheet: Sheet,
    *,
    row_ids: list[int] | None,
    row_numbers: list[int] | None,
) -> Proposal:
    if not row_ids and not row_numbers:
        raise ToolError("Give the row_ids (from query_rows) or row_numbers of the rows to delete.")
    columns = _columns(sheet)
    found = [row_find(sheet=sheet, row_id=pk, row_number=None) for pk in row_ids or []]
    found += [row_find(sheet=sheet, row_id=None, row_number=n) for n in row_numbers or []]
    unique = {row.pk: row for row in found}
    rows = [
        {"row_id": row.pk, "row_number": row.row_number, "row": _label(row, columns)}
        for row in sorted(unique.values(), key=lambda r: r.row_number)
    ]
    noun = "row" if len(rows) == 1 else "rows"
    return Proposal(
        summary=f"Delete {len(rows)} {noun} from {sheet.name}",
        preview={"sheet_id": sheet.pk, "rows": rows},
    )


@applier("delete_rows")
def delete_rows_apply(context: ToolContext, sheet: Sheet, preview: dict) -> Outcome:
    ids = [row["row_id"] for row in preview["rows"]]
    edit = sheet_services.rows_delete(
        user=context.user, sheet_id=sheet.pk, row_ids=ids, source=context.source
    )
    if edit.status != "applied":
        return Outcome(status="failed", text=f"Nothing was deleted: {edit.error or edit.status}.")
    return Outcome(
        status="applied",
        text=f"{len(edit.row_ids)} row(s) deleted.",
        detail={"row_ids": list(edit.row_ids)},
    )
