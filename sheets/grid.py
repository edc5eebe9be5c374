"""The grid's read side: one page of rows from the mirror, ready to render.

Which rows (filter, sort, paging) is sheets/grid_query.py; this module turns them into cells,
row by row, with what the page needs beside the values: read-only state, formulas, pending edits,
indentation. Cells are rendered here too, not in the template: a page has 2,000 of them and the
template engine would spend ~100 µs on each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

from sheets.grid_query import (  # noqa: F401 (the grid's read API, in one place for views)
    Condition,
    FilterInvalid,
    Sort,
    filter_parse,
    rows_filtered,
    sort_parse,
)
from sheets.models import CellEdit, Column, Row, Sheet
from sheets.validation import column_read_only_reason

PAGE_SIZE = 100
# Beyond this, "keep scrolling" turns into "narrow the filter": offsets this deep are slow and
# nobody reads that far.
MAX_OFFSET = 100_000
MAX_LIMIT = 1000  # rows in one answer, for a page that reconnects after scrolling far
TEXT_LIMIT = 80  # longer text is edited in a textarea


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
    depth: int = 0  # how far a primary cell is indented under its parents
    mark: CellMark | None = None  # a running job is about to fill it

    @property
    def html(self) -> SafeString:
        """The cell as the grid shows it (the `cell` partial is this)."""
        column = self.column
        kind = column.type.lower()
        classes = f"cell t-{kind}"
        if column.primary:
            classes += " primary"
        if self.readonly:
            classes += " ro"
        title = ""
        if self.formula:
            classes += " formula"
            title = self.formula
        if self.pending:
            classes += " pending"
            title = title or self.pending
        if self.mark is not None:
            classes += f" job-{self.mark.state}"
            title = title or self.mark.title
        if not title and kind == "contact_list" and self.value:
            title = str(self.value)
        attrs = f' title="{escape(title)}"' if title else ""
        if column.primary and self.depth:
            attrs += f' style="--depth: {int(self.depth)}"'
        if self.mark is not None:
            attrs += f' data-job="{int(self.mark.job_id)}"'
        if kind == "checkbox":
            on = self.value is True
            content = (
                f'<span data-v="{escape(self.value_json)}" class="check{" on" if on else ""}" '
                f'aria-label="{"checked" if on else "not checked"}"></span>'
            )
        else:
            content = escape(self.display, quote=False)
        return mark_safe(  # noqa: S308 (every value above is escaped)
            f'<td id="{self.dom_id}" data-col="{column.pk}" class="{classes}"{attrs}>{content}</td>'
        )

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


@dataclass(frozen=True)
class CellMark:
    """A cell a running job is about to fill: "queued", "working" or "failed" (until written)."""

    state: str
    title: str
    job_id: int


@dataclass(frozen=True)
class GridWorker:
    """Something at work on the sheet that the grid shows like a collaborator (an AI job)."""

    id: int
    name: str
    percent: int
    url: str


@dataclass
class GridRow:
    row: Row
    cells: list[GridCell]
    depth: int = 0
    editable: bool = False

    def html(self, *, oob: bool = False) -> SafeString:
        """The row as the grid shows it (the `row` partial is this): built here, like the cells,
        because the template engine's dozen lookups per row were a quarter of a page's time."""
        pk, number = self.row.pk, self.row.row_number
        box = (
            f'<input type="checkbox" name="row" value="{pk}" aria-label="Select row {number}">'
            if self.editable
            else ""
        )
        swap = ' hx-swap-oob="true"' if oob else ""
        return mark_safe(  # noqa: S308 (ids and numbers are ints; cells_html is escaped)
            f'<tr id="r-{pk}" data-row="{pk}" data-number="{number}"{swap}>'
            f'<th class="rownum" scope="row">{box}'
            f"<span>{number}</span></th>{self.cells_html}</tr>"
        )

    @property
    def html_page(self) -> SafeString:
        return self.html()

    @property
    def html_oob(self) -> SafeString:
        return self.html(oob=True)

    @property
    def id(self) -> int:
        return self.row.pk

    @property
    def cells_html(self) -> SafeString:
        return mark_safe("".join(cell.html for cell in self.cells))  # noqa: S308 (escaped)

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
    workers: list[GridWorker] = field(default_factory=list)

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.rows)


def column_readonly(column: Column) -> bool:
    """Locked and system columns (created/modified by/date, auto-number) are never edited here."""
    return bool(column_read_only_reason(column))


def grid_cell(
    *, row: Row, column: Column, editable: bool, readonly: bool | None = None, depth: int = 0
) -> GridCell:
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
    if readonly is None:
        readonly = not editable or column_readonly(column)
    return GridCell(
        column=column,
        row_id=row.pk,
        display=display,
        value=value,
        formula=cell.get("formula") or "",
        readonly=readonly,
        depth=depth if column.primary else 0,
    )


def grid_row(
    *,
    row: Row,
    columns: list[Column],
    editable: bool,
    depth: int = 0,
    readonly: dict[int, bool] | None = None,
) -> GridRow:
    """One row's cells; `readonly` (column id -> bool) saves working it out again for each row."""
    if readonly is None:
        readonly = columns_readonly(columns=columns, editable=editable)
    return GridRow(
        row=row,
        cells=[
            grid_cell(row=row, column=c, editable=editable, readonly=readonly[c.pk], depth=depth)
            for c in columns
        ],
        depth=depth,
        editable=editable,
    )


def columns_readonly(*, columns: list[Column], editable: bool) -> dict[int, bool]:
    return {c.pk: not editable or column_readonly(c) for c in columns}


def grid_columns(*, sheet: Sheet) -> list[Column]:
    """The visible columns, primary first (Smartsheet keeps it frozen at the left)."""
    columns = [c for c in sheet.columns.order_by() if not c.hidden]  # sorted below, no join
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


# Jobs show in the grid (workers in the presence bar, marks on the cells they will fill), but
# sheets may not import jobs (the apps depend one way): jobs registers where to read them, from
# its AppConfig.ready(). (sheet id, row ids) -> (workers, {(row id, column id): mark}), one query.
ActivitySource = Callable[..., tuple[list[GridWorker], dict[tuple[int, int], CellMark]]]
_activity_sources: list[ActivitySource] = []


def activity_register(source: ActivitySource) -> None:
    if source not in _activity_sources:
        _activity_sources.append(source)


def cells_mark_activity(*, sheet_id: int, rows: list[GridRow]) -> list[GridWorker]:
    """Mark the cells running jobs are about to fill; the jobs themselves, for the presence bar."""
    workers: list[GridWorker] = []
    marks: dict[tuple[int, int], CellMark] = {}
    for source in _activity_sources:
        found, marked = source(sheet_id=sheet_id, row_ids=[r.id for r in rows])
        workers.extend(found)
        marks.update(marked)
    if marks:
        for grow in rows:
            for cell in grow.cells:
                cell.mark = marks.get((grow.id, cell.column.pk))
    return workers


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
    # Two steps: the filter and sort pick row ids (the database sorts narrow records, not 20,000
    # JSON documents), then the page's rows are read by id.
    total = None
    if offset == 0 and (condition is not None or sort is not None):
        # A filter or a sort reads every row anyway: one pass gives both the page and the count
        # (a second pass to count would cost as much again; a window count makes SQLite keep
        # every matching row).
        every = list(rows.values_list("pk", flat=True))
        total, ids = len(every), every[: limit + 1]
    else:
        ids = list(rows.values_list("pk", flat=True)[offset : offset + limit + 1])
    has_more = len(ids) > limit
    ids = ids[:limit]
    if offset == 0 and total is None:
        total = rows.count() if has_more else len(ids)  # from the index alone
    # No ordering: the model's ("sheet", ...) would join the sheet table only to sort 100 rows
    # that are put in order here anyway.
    by_id = (
        Row.objects.only("pk", "sheet_id", "row_number", "parent_id", "cells")
        .order_by()
        .in_bulk(ids)
    )
    fetched = [by_id[pk] for pk in ids if pk in by_id]
    # Indentation shows the hierarchy only in sheet order; a sorted view is flat, as in Smartsheet.
    depths = row_depths(sheet_id=sheet.pk, rows=fetched) if sort is None else {}
    readonly = columns_readonly(columns=columns, editable=editable)
    grid_rows = [
        grid_row(
            row=r,
            columns=columns,
            editable=editable,
            depth=depths.get(r.pk, 0),
            readonly=readonly,
        )
        for r in fetched
    ]
    cells_mark_pending(sheet_id=sheet.pk, rows=grid_rows)
    workers = cells_mark_activity(sheet_id=sheet.pk, rows=grid_rows)
    return RowsPage(
        rows=grid_rows,
        offset=offset,
        has_more=has_more,
        total=total,
        columns=columns,
        workers=workers,
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
