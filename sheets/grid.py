"""The grid's read side: one page of rows from the mirror, filtered and sorted in the database.

Filters and sorts run over `Row.cells` (jsonb on PostgreSQL, JSON text with JSON1 on SQLite), so
a 20,000-row sheet is never loaded whole: the database picks the page, Python renders 100 rows.

Filter text is either free text (any cell contains it) or one condition `Column op value`, with
op one of = != < > <= >= contains, e.g. `Status = Blocked`, `Hours Spent >= 10`, `Due < 2025-03-01`.
Sorts name a column id, with a leading "-" for descending: `?sort=-1234`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

from django.db.models import (
    BooleanField,
    Case,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IExact,
    LessThan,
    LessThanOrEqual,
)

from sheets.models import CellEdit, Column, Row, Sheet
from sheets.validation import column_read_only_reason

PAGE_SIZE = 100
# Beyond this, "keep scrolling" turns into "narrow the filter": offsets this deep are slow and
# nobody reads that far.
MAX_OFFSET = 100_000
MAX_LIMIT = 1000  # rows in one answer, for a page that reconnects after scrolling far
TEXT_LIMIT = 80  # longer text is edited in a textarea

OPS = ("contains", "!=", "<=", ">=", "=", "<", ">")
TRUE_WORDS = {"true", "yes", "checked", "1", "x", "✓"}
FALSE_WORDS = {"false", "no", "unchecked", "0", ""}
DATE_TYPES = {"DATE", "DATETIME", "ABSTRACT_DATETIME"}
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")


class FilterInvalid(ValueError):
    """The filter text names a column but cannot be applied; the message says how to fix it."""


# --- Reading a cell in SQL ----------------------------------------------------------------------


class CellExtract(Func):
    """One key ("value" or "displayValue") of one cell of Row.cells, as SQL.

    `as_` chooses the SQL type: "text" (strings; numbers as their text), "number" (numbers only,
    NULL for text), "bool" (true only for a JSON true) or "kind" (0 a number, 1 other, 2 empty:
    the two databases order JSON types differently, so sorts order by kind first). Written by
    hand because Django's key transforms read an all-digit key such as a column id as an array
    index on SQLite.
    """

    def __init__(self, column_id: int, key: str = "value", *, as_: str = "text") -> None:
        self.column_id, self.key, self.as_ = str(column_id), key, as_
        output = {"number": FloatField(), "bool": BooleanField(), "kind": IntegerField()}.get(
            as_, TextField()
        )
        super().__init__(F("cells"), output_field=output)

    def as_sql(self, compiler, connection, **extra):  # pragma: no cover (a database per vendor)
        raise NotImplementedError(f"the grid does not support {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra):
        cells, params = compiler.compile(self.source_expressions[0])
        cell = f"({cells} -> %s -> %s)"
        args = [*params, self.column_id, self.key]
        if self.as_ == "text":
            return f"({cells} -> %s ->> %s)", args
        if self.as_ == "number":
            sql = (
                f"(CASE WHEN jsonb_typeof({cell}) = 'number' "
                f"THEN ({cells} -> %s ->> %s)::float END)"
            )
            return sql, args * 2
        if self.as_ == "bool":
            return f"COALESCE({cell} = 'true'::jsonb, false)", args
        # "kind": 0 a number, 1 anything else, 2 an empty cell.
        sql = (
            f"(CASE WHEN jsonb_typeof({cell}) IS NULL OR jsonb_typeof({cell}) = 'null' THEN 2 "
            f"WHEN jsonb_typeof({cell}) = 'number' THEN 0 ELSE 1 END)"
        )
        return sql, args * 3

    def as_sqlite(self, compiler, connection, **extra):
        cells, params = compiler.compile(self.source_expressions[0])
        path = f'$."{self.column_id}".{self.key}'
        args = [*params, path]
        if self.as_ == "text":
            # json_extract gives 1/0 for booleans; text columns never hold those.
            return f"CAST(json_extract({cells}, %s) AS TEXT)", args
        if self.as_ == "number":
            sql = (
                f"(CASE WHEN json_type({cells}, %s) IN ('integer', 'real') "
                f"THEN json_extract({cells}, %s) END)"
            )
            return sql, args * 2
        if self.as_ == "bool":
            return f"COALESCE(json_type({cells}, %s) = 'true', 0)", args
        sql = (
            f"(CASE WHEN json_type({cells}, %s) IS NULL OR json_type({cells}, %s) = 'null' THEN 2 "
            f"WHEN json_type({cells}, %s) IN ('integer', 'real') THEN 0 ELSE 1 END)"
        )
        return sql, args * 3


def _shown(column: Column) -> Coalesce:
    """What the cell shows: its display value, else its value."""
    return Coalesce(
        CellExtract(column.pk, "displayValue"),
        CellExtract(column.pk),
        Value(""),
        output_field=TextField(),
    )


def _raw(column: Column) -> Coalesce:
    return Coalesce(CellExtract(column.pk), Value(""), output_field=TextField())


# --- Filter and sort ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    column: Column | None  # None: free text over every column
    op: str
    value: str

    def __str__(self) -> str:
        if self.column is None:
            return self.value
        return f"{self.column.title} {self.op} {self.value}"


def filter_parse(*, text: str, columns: list[Column]) -> Condition | None:
    """`Column op value` if the text starts with a column title and an operator; else free text."""
    text = (text or "").strip()
    if not text:
        return None
    lowered = text.lower()
    for column in sorted(columns, key=lambda c: len(c.title), reverse=True):
        title = column.title.lower()
        if not title or not lowered.startswith(title):
            continue
        rest = text[len(title) :].lstrip()
        for op in OPS:
            if rest.lower().startswith(op) and (op != "contains" or rest[8:9] in ("", " ")):
                value = rest[len(op) :].strip()
                return _condition_check(Condition(column, op, value))
    return Condition(None, "contains", text)


def _condition_check(condition: Condition) -> Condition:
    column, op, value = condition.column, condition.op, condition.value
    if column.type == "CHECKBOX":
        if op not in ("=", "!=") or value.lower() not in TRUE_WORDS | FALSE_WORDS:
            raise FilterInvalid(
                f"{column.title} is a checkbox: filter it with “{column.title} = true” "
                f"or “{column.title} = false”."
            )
    elif column.type in DATE_TYPES and op in ("<", ">", "<=", ">="):
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            raise FilterInvalid(f"Compare {column.title} with a date like 2026-11-30.") from None
    return condition


def _condition_q(condition: Condition, columns: list[Column]) -> Q:
    column, op, value = condition.column, condition.op, condition.value
    if column is None:
        q = Q()
        for each in columns:
            q |= Q(IContains(_shown(each), value))
            if each.type in ("CONTACT_LIST", "MULTI_CONTACT_LIST"):  # the email behind a name
                q |= Q(IContains(_raw(each), value))
        return q
    if column.type == "CHECKBOX":
        wanted = value.lower() in TRUE_WORDS
        return Q(Exact(CellExtract(column.pk, as_="bool"), wanted != (op == "!=")))
    shown, raw = _shown(column), _raw(column)
    if op == "contains":
        return Q(IContains(shown, value)) | Q(IContains(raw, value))
    if op in ("=", "!="):
        q = Q(IExact(shown, value)) | Q(IExact(raw, value))
        if NUMBER_RE.match(value):
            q |= Q(Exact(CellExtract(column.pk, as_="number"), float(value)))
        return ~q if op == "!=" else q
    lookup = {"<": LessThan, ">": GreaterThan, "<=": LessThanOrEqual, ">=": GreaterThanOrEqual}[op]
    if column.type not in DATE_TYPES and NUMBER_RE.match(value):
        return Q(lookup(CellExtract(column.pk, as_="number"), float(value)))
    return Q(lookup(CellExtract(column.pk), value))


@dataclass(frozen=True)
class Sort:
    column: Column
    descending: bool = False

    @property
    def param(self) -> str:
        return f"{'-' if self.descending else ''}{self.column.pk}"


def sort_parse(*, text: str, columns: list[Column]) -> Sort | None:
    """`1234` or `-1234` (a column id); anything else sorts by row number."""
    text = (text or "").strip()
    descending = text.startswith("-")
    wanted = text.lstrip("-")
    for column in columns:
        if str(column.pk) == wanted:
            return Sort(column, descending)
    return None


# --- One page of rows ---------------------------------------------------------------------------


@dataclass
class GridCell:
    column: Column
    row_id: int
    display: str
    value: object
    formula: str
    readonly: bool
    pending: str = ""  # why the cell shows a value Smartsheet does not hold yet

    @property
    def dom_id(self) -> str:
        return f"c-{self.row_id}-{self.column.pk}"

    @property
    def value_json(self) -> str:
        """The starting value an editor sends back with its save (the conflict check's basis)."""
        return json.dumps(self.value)

    @property
    def checked(self) -> bool:
        return self.value is True

    @property
    def editor(self) -> str:
        """Which input edits this cell."""
        if self.formula:
            return "formula"
        kind = {
            "DATE": "date",
            "PICKLIST": "picklist",
            "MULTI_PICKLIST": "multipicklist",
            "CHECKBOX": "checkbox",
            "CONTACT_LIST": "contact",
        }.get(self.column.type, "text")
        if kind == "text" and len(self.edit_text) > TEXT_LIMIT:
            return "textarea"
        return kind

    @property
    def edit_text(self) -> str:
        """What the editor starts with: the formula, else the raw value as text."""
        if self.formula:
            return self.formula
        if self.value is None:
            return ""
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, float) and self.value.is_integer():
            return str(int(self.value))
        return str(self.value)

    @property
    def selected(self) -> list[str]:
        """Picklist choices currently in the cell (a multi-picklist reads back as "A, B")."""
        if self.value is None:
            return []
        if isinstance(self.value, list):
            return [str(v) for v in self.value]
        return [part.strip() for part in re.split(r"[\n,]", str(self.value)) if part.strip()]


@dataclass
class GridRow:
    row: Row
    cells: list[GridCell]
    depth: int = 0

    @property
    def id(self) -> int:
        return self.row.pk

    @property
    def number(self) -> int:
        return self.row.row_number


@dataclass
class RowsPage:
    rows: list[GridRow]
    offset: int
    has_more: bool
    total: int | None = None  # counted on the first page only
    columns: list[Column] = field(default_factory=list)

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.rows)


def column_readonly(column: Column) -> bool:
    """Locked and system columns (created/modified by/date, auto-number) are never edited here."""
    return bool(column_read_only_reason(column))


def grid_cell(*, row: Row, column: Column, editable: bool) -> GridCell:
    cell = row.cells.get(str(column.pk)) or {}
    value = cell.get("value")
    if "displayValue" in cell:
        display = cell["displayValue"]
    elif value is None:
        display = ""
    elif isinstance(value, float) and value.is_integer():
        display = str(int(value))
    else:
        display = str(value)
    return GridCell(
        column=column,
        row_id=row.pk,
        display=display,
        value=value,
        formula=cell.get("formula") or "",
        readonly=not editable or column_readonly(column),
    )


def grid_row(*, row: Row, columns: list[Column], editable: bool, depth: int = 0) -> GridRow:
    return GridRow(
        row=row,
        cells=[grid_cell(row=row, column=c, editable=editable) for c in columns],
        depth=depth,
    )


def grid_columns(*, sheet: Sheet) -> list[Column]:
    """The visible columns, primary first (Smartsheet keeps it frozen at the left)."""
    columns = [c for c in sheet.columns.all() if not c.hidden]
    return sorted(columns, key=lambda c: (not c.primary, c.index))


def cells_mark_pending(*, sheet_id: int, rows: list[GridRow]) -> None:
    """Show edits still waiting for Smartsheet (one query) in place of the mirror's values."""
    by_id = {r.id: r for r in rows}
    if not by_id:
        return
    waiting = CellEdit.objects.filter(
        sheet_id=sheet_id, status=CellEdit.Status.PENDING, row_id__in=list(by_id)
    ).order_by("created_at", "pk")
    for edit in waiting.only("row_id", "column_id", "new_display", "new_value"):
        for cell in by_id[edit.row_id].cells:
            if cell.column.pk == edit.column_id:
                cell.display = edit.new_display or (
                    "" if edit.new_value is None else str(edit.new_value)
                )
                cell.value = edit.new_value
                cell.pending = "Waiting for Smartsheet: saved here, written there when it answers."


def row_depth(*, row: Row) -> int:
    return row_depths(sheet_id=row.sheet_id, rows=[row]).get(row.pk, 0)


def rows_before(*, sheet_id: int, rows: list[Row]) -> dict[int, int]:
    """For each row, the id of the row just above it in sheet order (one query)."""
    numbers = {r.row_number - 1: r.pk for r in rows if r.row_number > 1}
    if not numbers:
        return {}
    above = Row.objects.filter(sheet_id=sheet_id, row_number__in=list(numbers)).values_list(
        "row_number", "pk"
    )
    return {numbers[number]: pk for number, pk in above}


def row_depths(*, sheet_id: int, rows: list[Row]) -> dict[int, int]:
    """How deep each row sits under its parents (one query: the sheet's child rows)."""
    if not any(r.parent_id for r in rows):
        return {}
    parents = dict(
        Row.objects.filter(sheet_id=sheet_id, parent_id__isnull=False).values_list(
            "pk", "parent_id"
        )
    )
    depths: dict[int, int] = {}
    for row in rows:
        depth, current, seen = 0, row.pk, set()
        while current in parents and current not in seen:
            seen.add(current)
            current = parents[current]
            depth += 1
        depths[row.pk] = depth
    return depths


def rows_filtered(
    *, sheet: Sheet, columns: list[Column], condition: Condition | None, sort: Sort | None
) -> QuerySet[Row]:
    rows = Row.objects.filter(sheet_id=sheet.pk)
    if condition is not None:
        rows = rows.filter(_condition_q(condition, columns))
    if sort is None:
        return rows.order_by("row_number", "pk")
    # Numbers (numerically), then text (ignoring case), then empty cells; descending reverses
    # the first two but still leaves empty cells last, as spreadsheets do.
    column_id = sort.column.pk
    kind = CellExtract(column_id, as_="kind")
    number = CellExtract(column_id, as_="number")
    text = Lower(CellExtract(column_id))
    if sort.descending:
        empty_last = Case(When(Exact(kind, 2), then=Value(1)), default=Value(0))
        order = [empty_last, kind.desc(), number.desc(), text.desc()]
    else:
        order = [kind.asc(), number.asc(), text.asc()]
    return rows.order_by(*order, "row_number", "pk")


def rows_page(
    *,
    sheet: Sheet,
    columns: list[Column],
    editable: bool,
    condition: Condition | None = None,
    sort: Sort | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> RowsPage:
    """One page of the grid: at most `limit` rows from `offset`, in a constant number of queries."""
    offset = max(0, min(offset, MAX_OFFSET))
    rows = rows_filtered(sheet=sheet, columns=columns, condition=condition, sort=sort)
    fetched = list(rows.only("pk", "row_number", "parent_id", "cells")[offset : offset + limit + 1])
    has_more = len(fetched) > limit
    fetched = fetched[:limit]
    total = None
    if offset == 0:
        total = len(fetched) if not has_more else rows.count()
    # Indentation shows the hierarchy only in sheet order; a sorted view is flat, as in Smartsheet.
    depths = row_depths(sheet_id=sheet.pk, rows=fetched) if sort is None else {}
    grid_rows = [
        grid_row(row=r, columns=columns, editable=editable, depth=depths.get(r.pk, 0))
        for r in fetched
    ]
    cells_mark_pending(sheet_id=sheet.pk, rows=grid_rows)
    return RowsPage(
        rows=grid_rows,
        offset=offset,
        has_more=has_more,
        total=total,
        columns=columns,
    )


# --- Column headers -----------------------------------------------------------------------------

TYPE_HINTS = {
    "TEXT_NUMBER": "text / number",
    "DATE": "date",
    "DATETIME": "date & time",
    "ABSTRACT_DATETIME": "date & time",
    "CONTACT_LIST": "contact",
    "MULTI_CONTACT_LIST": "contacts",
    "PICKLIST": "dropdown",
    "MULTI_PICKLIST": "multi-select",
    "CHECKBOX": "checkbox",
    "DURATION": "duration",
    "PREDECESSOR": "predecessors",
}
SYSTEM_HINTS = {
    "AUTO_NUMBER": "auto-number",
    "CREATED_DATE": "created",
    "MODIFIED_DATE": "modified",
    "CREATED_BY": "created by",
    "MODIFIED_BY": "modified by",
}


@dataclass(frozen=True)
class GridHeader:
    column: Column
    hint: str
    readonly: bool
    sorted: str  # "", "asc" or "desc"
    sort_param: str  # what clicking the title sorts by next


def grid_headers(*, columns: list[Column], sort: Sort | None) -> list[GridHeader]:
    headers = []
    for column in columns:
        current = sort is not None and sort.column.pk == column.pk
        state = ("desc" if sort.descending else "asc") if current else ""
        # Ascending, then descending, then back to sheet order.
        following = {"": str(column.pk), "asc": f"-{column.pk}", "desc": ""}[state]
        hint = SYSTEM_HINTS.get(column.system_column_type) or TYPE_HINTS.get(
            column.type, column.type.lower()
        )
        if column.locked:
            hint += " · locked"
        headers.append(GridHeader(column, hint, column_readonly(column), state, following))
    return headers
