"""Query tools: rows (filtered, sorted, paged) and aggregates over the whole mirror, in SQL.

Answers are compact (column titles once, rows as lists) and bounded: at most MAX_LIMIT rows and
about MAX_RESULT_CHARS characters per answer, with `next_offset` to ask for the next page.
"""

from __future__ import annotations

from typing import Any

from chat.tools.reads import SHEET_ID, cell_shown, column_named, columns_of
from chat.tools.registry import ToolContext, tool
from chat.tools.rowquery import AGGREGATES, OPS, aggregate_rows, rows_query
from sheets.models import Sheet

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_RESULT_CHARS = 12_000

FILTERS = {
    "type": ["array", "null"],
    "description": "Conditions every row must meet (all of them); null for none.",
    "items": {
        "type": "object",
        "properties": {
            "column": {"type": "string", "description": "A column title."},
            "op": {"type": "string", "enum": list(OPS)},
            "value": {"type": "string", "description": "Compared as the column's type."},
        },
        "required": ["column", "op", "value"],
        "additionalProperties": False,
    },
}


@tool(
    name="query_rows",
    description=(
        "Find rows of a sheet: filter by column conditions and/or free text, sort, pick columns. "
        f"Returns at most `limit` rows (≤ {MAX_LIMIT}) as lists under `columns`, the total "
        "matching, and `next_offset` for the next page. Counting or totalling is aggregate's job."
    ),
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "filters": FILTERS,
            "search": {
                "type": ["string", "null"],
                "description": "Free text any cell may contain; null for none.",
            },
            "sort": {
                "type": ["object", "null"],
                "properties": {
                    "column": {"type": "string"},
                    "descending": {"type": "boolean"},
                },
                "required": ["column", "descending"],
                "additionalProperties": False,
            },
            "columns": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Column titles to return; null for every column.",
            },
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_LIMIT},
            "offset": {"type": ["integer", "null"], "minimum": 0},
        },
        "required": ["sheet_id", "filters", "search", "sort", "columns", "limit", "offset"],
        "additionalProperties": False,
    },
)
def query_rows(
    context: ToolContext,
    sheet: Sheet,
    *,
    filters: list[dict] | None,
    search: str | None,
    sort: dict | None,
    columns: list[str] | None,
    limit: int | None,
    offset: int | None,
) -> dict:
    all_columns = columns_of(sheet)
    shown = [column_named(all_columns, title) for title in columns] if columns else all_columns
    shown = [c for c in shown if not c.hidden or columns]
    rows = rows_query(
        sheet=sheet, columns=all_columns, filters=filters or [], search=search, sort=sort
    )
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    offset = offset or 0
    page = list(rows.only("pk", "row_number", "cells")[offset : offset + limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    out_rows, size = [], 0
    for row in page:
        line = [row.pk, row.row_number, *(cell_shown(row, c) for c in shown)]
        size += len(str(line))
        if out_rows and size > MAX_RESULT_CHARS:
            has_more = True
            break
        out_rows.append(line)
    total = offset + len(out_rows) if not has_more and offset == 0 else rows.count()
    answer: dict[str, Any] = {
        "sheet": sheet.name,
        "columns": ["row_id", "row_number", *(c.title for c in shown)],
        "rows": out_rows,
        "total": total,
        "next_offset": offset + len(out_rows) if has_more else None,
    }
    return answer


@tool(
    name="aggregate",
    description=(
        "Count rows, or sum/average/min/max a column, over every matching row of a sheet "
        "(computed in the database, not from a page), optionally grouped by a column."
    ),
    parameters={
        "type": "object",
        "properties": {
            "sheet_id": SHEET_ID,
            "operation": {"type": "string", "enum": list(AGGREGATES)},
            "column": {
                "type": ["string", "null"],
                "description": "The column to sum/average/min/max; null to count rows.",
            },
            "group_by": {
                "type": ["string", "null"],
                "description": "A column whose values form the groups; null for one total.",
            },
            "filters": FILTERS,
        },
        "required": ["sheet_id", "operation", "column", "group_by", "filters"],
        "additionalProperties": False,
    },
)
def aggregate(
    context: ToolContext,
    sheet: Sheet,
    *,
    operation: str,
    column: str | None,
    group_by: str | None,
    filters: list[dict] | None,
) -> dict:
    columns = columns_of(sheet)
    return aggregate_rows(
        sheet=sheet,
        columns=columns,
        operation=operation,
        column=column_named(columns, column) if column else None,
        group_by=column_named(columns, group_by) if group_by else None,
        filters=filters or [],
    )
