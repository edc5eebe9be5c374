"""Read tools: the sheets shared with the user, a sheet's columns, one row; from the mirror."""

from __future__ import annotations

from typing import Any

from chat.tools.registry import ToolContext, ToolError, tool
from sheets.models import Column, Row, Sheet
from sheets.selectors import sheets_visible_to

MAX_CELL_CHARS = 200
MAX_SHEETS = 200

SHEET_ID = {"type": "integer", "description": "The sheet's id, from list_sheets."}


def _text(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[: MAX_CELL_CHARS - 1] + "…"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def cell_shown(row: Row, column: Column) -> Any:
    """What a person sees in the cell: numbers stay numbers, the rest its display text."""
    cell = row.cells.get(str(column.pk)) or {}
    value = cell.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _text(value)
    if "displayValue" in cell:
        return _text(cell["displayValue"])
    return _text(value)


def column_named(columns: list[Column], title: str) -> Column:
    wanted = title.strip().casefold()
    for column in columns:
        if column.title.casefold() == wanted:
            return column
    titles = ", ".join(c.title for c in columns)
    raise ToolError(f"There is no column “{title}”; the columns are: {titles}.")


def columns_of(sheet: Sheet) -> list[Column]:
    return list(Column.objects.filter(sheet=sheet).order_by("index"))


@tool(
    name="list_sheets",
    description="List the sheets shared with the user: id, name and row count of each.",
    parameters={
        "type": "object",
        "properties": {
            "name_contains": {
                "type": ["string", "null"],
                "description": "Only sheets whose name contains this text; null for all.",
            }
        },
        "required": ["name_contains"],
        "additionalProperties": False,
    },
)
def list_sheets(context: ToolContext, sheet: None, *, name_contains: str | None) -> dict:
    sheets = sheets_visible_to(context.user).order_by("name", "pk")
    if name_contains:
        sheets = sheets.filter(name__icontains=name_contains)
    found = list(sheets.values("id", "name", "row_count")[: MAX_SHEETS + 1])
    answer: dict[str, Any] = {"sheets": found[:MAX_SHEETS], "total": len(found[:MAX_SHEETS])}
    if len(found) > MAX_SHEETS:
        answer["note"] = f"Only the first {MAX_SHEETS}; narrow with name_contains."
    return answer


@tool(
    name="get_sheet_schema",
    description=(
        "Describe one sheet: its columns (title, type, dropdown options, primary, read-only) "
        "and row count. Call it before querying a sheet whose columns you do not know."
    ),
    parameters={
        "type": "object",
        "properties": {"sheet_id": SHEET_ID},
        "required": ["sheet_id"],
        "additionalProperties": False,
    },
)
def get_sheet_schema(context: ToolContext, sheet: Sheet) -> dict:
    return sheet_schema(sheet)


def sheet_schema(sheet: Sheet) -> dict[str, Any]:
    columns = []
    for column in columns_of(sheet):
        described: dict[str, Any] = {"title": column.title, "type": column.type}
        if column.primary:
            described["primary"] = True
        if column.options:
            described["options"] = column.options[:50]
        if column.locked or column.system_column_type or column.type == "AUTO_NUMBER":
            described["read_only"] = True
        if column.description:
            described["description"] = column.description[:200]
        columns.append(described)
    return {"id": sheet.pk, "name": sheet.name, "row_count": sheet.row_count, "columns": columns}


@tool(
    name="get_row",
    description="One row of a sheet with every cell, by its row id (or its row number).",
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "row_id": {"type": ["integer", "null"], "description": "The row id; or null."},
            "row_number": {
                "type": ["integer", "null"],
                "description": "The row's number in the sheet (1 is the top); or null.",
            },
        },
        "required": ["sheet_id", "row_id", "row_number"],
        "additionalProperties": False,
    },
)
def get_row(
    context: ToolContext, sheet: Sheet, *, row_id: int | None, row_number: int | None
) -> dict:
    row = row_find(sheet=sheet, row_id=row_id, row_number=row_number)
    return {
        "sheet": sheet.name,
        "row_id": row.pk,
        "row_number": row.row_number,
        "cells": {c.title: cell_shown(row, c) for c in columns_of(sheet)},
    }


def row_find(*, sheet: Sheet, row_id: int | None, row_number: int | None) -> Row:
    rows = Row.objects.filter(sheet=sheet)
    if row_id is not None:
        row = rows.filter(pk=row_id).first()
    elif row_number is not None:
        row = rows.filter(row_number=row_number).first()
    else:
        raise ToolError("Give the row's row_id (from query_rows) or its row_number.")
    if row is None:
        which = f"id {row_id}" if row_id is not None else f"number {row_number}"
        raise ToolError(f"“{sheet.name}” has no row with {which}; query_rows lists its rows.")
    return row
