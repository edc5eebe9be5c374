"""Filter and sort grid rows in the database, over `Row.cells` (jsonb on PostgreSQL, JSON text
with JSON1 on SQLite), so a 20,000-row sheet is never loaded to pick one page.

Filter text is either free text (any cell contains it) or one condition `Column op value`, with
op one of = != < > <= >= contains, e.g. `Status = Blocked`, `Hours Spent >= 10`, `Due < 2025-03-01`.
Sorts name a column id, with a leading "-" for descending: `?sort=-1234`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.db.models import (
    BooleanField,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    TextField,
    Value,
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

from sheets.models import Column, Row, Sheet

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
    NULL for text), "other" (text of anything but a number), "bool" (true only for a JSON true)
    or "sort" (SQLite: the native value, numbers before text, case ignored). Written by hand
    because Django's key transforms read an all-digit key such as a column id as an array index
    on SQLite.
    """

    def __init__(self, column_id: int, key: str = "value", *, as_: str = "text") -> None:
        self.column_id, self.key, self.as_ = str(column_id), key, as_
        output = {"number": FloatField(), "bool": BooleanField()}.get(as_, TextField())
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
        # "other": the text of anything but a number (NULL for numbers and empty cells).
        sql = f"(CASE WHEN jsonb_typeof({cell}) <> 'number' THEN ({cells} -> %s ->> %s) END)"
        return sql, args * 2

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
        if self.as_ == "sort":
            return f"json_extract({cells}, %s) COLLATE NOCASE", args
        # "other": the text of anything but a number (NULL for numbers and empty cells).
        sql = (
            f"(CASE WHEN json_type({cells}, %s) NOT IN ('integer', 'real') "
            f"THEN CAST(json_extract({cells}, %s) AS TEXT) END)"
        )
        return sql, args * 2


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


class CellsText(Func):
    """The row's whole `cells` JSON as text: one cheap scan before the per-cell checks."""

    def __init__(self) -> None:
        super().__init__(F("cells"), output_field=TextField())

    def as_sql(self, compiler, connection, **extra):
        cells, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"({cells})::text", params
        return cells, params


def _prefilter(value: str) -> Q:
    """Rows whose JSON text contains `value` at all (a superset of the rows that match).

    Skipped (everything passes) where the JSON text may spell the value differently: numbers
    (2.5 may be stored as 2.50), quotes and backslashes (escaped), non-ASCII (maybe escaped).
    """
    if connection.vendor != "sqlite":
        # PostgreSQL reads jsonb keys directly; turning each document into text costs more.
        return Q()
    if not value or NUMBER_RE.match(value) or not value.isascii():
        return Q()
    if any(ch in value for ch in '"\\') or any(ord(ch) < 32 for ch in value):
        return Q()
    return Q(IContains(CellsText(), value))


def _condition_q(condition: Condition, columns: list[Column]) -> Q:
    column, op, value = condition.column, condition.op, condition.value
    if column is None:
        q = Q()
        for each in columns:
            q |= Q(IContains(_shown(each), value))
            if each.type in ("CONTACT_LIST", "MULTI_CONTACT_LIST"):  # the email behind a name
                q |= Q(IContains(_raw(each), value))
        return _prefilter(value) & q
    if column.type == "CHECKBOX":
        wanted = value.lower() in TRUE_WORDS
        return Q(Exact(CellExtract(column.pk, as_="bool"), wanted != (op == "!=")))
    shown, raw = _shown(column), _raw(column)
    # The value behind what is shown matters where the two differ: a contact's email behind
    # their name, a date behind its formatted display. Elsewhere one read of the cell is enough.
    behind = column.type in ("CONTACT_LIST", "MULTI_CONTACT_LIST") or column.type in DATE_TYPES
    if op == "contains":
        q = Q(IContains(shown, value))
        if behind:
            q |= Q(IContains(raw, value))
        return _prefilter(value) & q
    if op in ("=", "!="):
        q = Q(IExact(shown, value))
        if behind:
            q |= Q(IExact(raw, value))
        if NUMBER_RE.match(value):
            q |= Q(Exact(CellExtract(column.pk, as_="number"), float(value)))
        return ~q if op == "!=" else _prefilter(value) & q
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
    if connection.vendor == "sqlite":
        # SQLite orders json_extract's native values that way already (numbers before text),
        # and one extraction per row is what costs: SQLite before 3.45 re-parses the JSON each
        # time.
        key = CellExtract(column_id, as_="sort")
        order = key.desc(nulls_last=True) if sort.descending else key.asc(nulls_last=True)
        return rows.order_by(order, "row_number", "pk")
    # PostgreSQL orders jsonb strings before numbers: two keys, numbers and other values, each
    # NULL for the other kind (every read of a key decompresses the row's cells, so few keys).
    number = CellExtract(column_id, as_="number")
    text = Lower(CellExtract(column_id, as_="other"))
    if sort.descending:
        order = [text.desc(nulls_last=True), number.desc(nulls_last=True)]
    else:
        order = [number.asc(nulls_last=True), text.asc(nulls_last=True)]
    return rows.order_by(*order, "row_number", "pk")
