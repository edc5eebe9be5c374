"""Rows and aggregates over the mirror, in SQL, through the grid's own filter and cell reading.

A tool's filters are structured ({column, op, value}); each becomes the grid's `Column op value`
condition, so chat and the grid agree on what "Status = Blocked" or "Hours >= 10" means on both
PostgreSQL (jsonb) and SQLite (JSON1).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Avg, Count, F, Max, Min, QuerySet, Sum, TextField, Value
from django.db.models.functions import Coalesce

from chat.tools.reads import column_named
from chat.tools.registry import ToolError
from sheets.grid_query import OPS as GRID_OPS
from sheets.grid_query import (
    CellExtract,
    Condition,
    FilterInvalid,
    Sort,
    filter_parse,
    rows_filtered,
)
from sheets.models import Column, Row, Sheet

OPS = tuple(op for op in ("=", "!=", "<", "<=", ">", ">=", "contains") if op in GRID_OPS)
AGGREGATES = ("count", "sum", "avg", "min", "max")
MAX_GROUPS = 50
NUMERIC_TYPES = {"TEXT_NUMBER", "AUTO_NUMBER", "DURATION"}


def _conditions(filters: list[dict[str, Any]], columns: list[Column]) -> list[Condition]:
    conditions = []
    for spec in filters:
        column = column_named(columns, spec["column"])
        op = spec["op"]
        if op not in OPS:
            raise ToolError(f"Unknown operator {op!r}; use one of {', '.join(OPS)}.")
        try:
            condition = filter_parse(text=f"{column.title} {op} {spec['value']}", columns=columns)
        except FilterInvalid as exc:
            raise ToolError(str(exc)) from exc
        if condition is None or condition.column is None:
            raise ToolError(f"Cannot filter “{column.title}” {op} {spec['value']!r}.")
        conditions.append(condition)
    return conditions


def rows_query(
    *,
    sheet: Sheet,
    columns: list[Column],
    filters: list[dict[str, Any]],
    search: str | None = None,
    sort: dict[str, Any] | None = None,
) -> QuerySet[Row]:
    """The matching rows, in the sort asked for (sheet order otherwise)."""
    conditions = _conditions(filters, columns)
    if search and search.strip():
        conditions.append(Condition(None, "contains", search.strip()))
    order = None
    if sort:
        order = Sort(column_named(columns, sort["column"]), bool(sort.get("descending")))
    first = conditions[0] if conditions else None
    rows = rows_filtered(sheet=sheet, columns=columns, condition=first, sort=order)
    # The grid filters on one condition; each further one narrows the rows (a semi-join).
    for condition in conditions[1:]:
        narrowed = rows_filtered(sheet=sheet, columns=columns, condition=condition, sort=None)
        rows = rows.filter(pk__in=narrowed.order_by().values("pk"))
    return rows


def _shown(column: Column) -> Coalesce:
    return Coalesce(
        CellExtract(column.pk, "displayValue"),
        CellExtract(column.pk),
        Value(""),
        output_field=TextField(),
    )


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 4)
    return value


def aggregate_rows(
    *,
    sheet: Sheet,
    columns: list[Column],
    operation: str,
    column: Column | None,
    group_by: Column | None,
    filters: list[dict[str, Any]],
) -> dict[str, Any]:
    """count/sum/avg/min/max over every matching row, in one query (grouped: one per group)."""
    rows = rows_query(sheet=sheet, columns=columns, filters=filters).order_by()
    if operation not in AGGREGATES:
        raise ToolError(f"Unknown operation {operation!r}; use one of {', '.join(AGGREGATES)}.")
    if operation != "count" and column is None:
        raise ToolError(f"Name the column to {operation}.")
    if operation == "count":
        measure = Count("pk") if column is None else Count(CellExtract(column.pk))
    elif operation in ("sum", "avg"):
        if column.type not in NUMERIC_TYPES:
            raise ToolError(
                f"“{column.title}” is a {column.type} column; {operation} needs numbers."
            )
        fn = Sum if operation == "sum" else Avg
        measure = fn(CellExtract(column.pk, as_="number"))
    else:
        fn = Min if operation == "min" else Max
        # Numbers compare as numbers; dates and text (ISO dates sort as text) as text.
        numeric = column.type in NUMERIC_TYPES
        measure = fn(CellExtract(column.pk, as_="number") if numeric else CellExtract(column.pk))
    answer: dict[str, Any] = {
        "sheet": sheet.name,
        "operation": operation,
        "column": column.title if column else None,
        "filters": filters,
    }
    if group_by is None:
        answer["matching_rows"] = rows.count() if operation != "count" or column else None
        value = rows.aggregate(value=measure)["value"]
        answer["value"] = _number(value)
        if answer["matching_rows"] is None:
            answer.pop("matching_rows")
        return answer
    groups = (
        rows.annotate(group=_shown(group_by))
        .values("group")
        .annotate(value=measure, rows=Count("pk"))
        .order_by(F("value").desc(nulls_last=True), "group")
    )
    found = list(groups[: MAX_GROUPS + 1])
    answer["group_by"] = group_by.title
    answer["groups"] = [
        {"group": g["group"] or "(empty)", "value": _number(g["value"]), "rows": g["rows"]}
        for g in found[:MAX_GROUPS]
    ]
    if len(found) > MAX_GROUPS:
        answer["note"] = f"Only the {MAX_GROUPS} largest groups; filter to see others."
    return answer
