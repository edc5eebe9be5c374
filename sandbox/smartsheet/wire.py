"""Reading requests and writing Smartsheet's JSON shapes: query parameters, lists, rows, sheets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from sandbox.smartsheet.model import ApiError, Column, Row, Sheet, User, iso

DEFAULT_PAGE_SIZE = 100


def bad_parameter(name: str, value: str) -> ApiError:
    return ApiError(400, 1018, f"The value '{value}' was not valid for the parameter '{name}'.")


def param_bool(query: QueryParams, name: str) -> bool:
    # The SDK sends Python's True/False; curl users send true/false.
    value = query.get(name)
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_parameter(name, value)


def param_int(query: QueryParams, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_parameter(name, value) from None


def param_list(query: QueryParams, name: str) -> list[str]:
    return [part.strip() for part in query.get(name, "").split(",") if part.strip()]


def param_ids(query: QueryParams, name: str) -> list[int]:
    try:
        return [int(part) for part in param_list(query, name)]
    except ValueError:
        raise bad_parameter(name, query.get(name, "")) from None


def param_time(query: QueryParams, name: str) -> datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_parameter(name, value) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def paged(items: Sequence[Any], query: QueryParams) -> dict[str, Any]:
    """Smartsheet's IndexResult; a page past the end answers the last page, like Smartsheet."""
    total = len(items)
    if param_bool(query, "includeAll"):
        return {
            "pageNumber": 1,
            "pageSize": total,
            "totalPages": 1,
            "totalCount": total,
            "data": list(items),
        }
    size = param_int(query, "pageSize") or DEFAULT_PAGE_SIZE
    number = param_int(query, "page") or 1
    if size < 1:
        raise bad_parameter("pageSize", str(size))
    if number < 1:
        raise bad_parameter("page", str(number))
    pages = max(1, math.ceil(total / size))
    number = min(number, pages)
    start = (number - 1) * size
    return {
        "pageNumber": number,
        "pageSize": size,
        "totalPages": pages if total else 0,
        "totalCount": total,
        "data": list(items[start : start + size]),
    }


def permalink(kind: str, object_id: int) -> str:
    return f"https://app.smartsheet.com/{kind}/{object_id:x}"


def sheet_summary(sheet: Sheet, user: User, with_version: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": sheet.id,
        "name": sheet.name,
        "accessLevel": sheet.access_level(user),
        "permalink": permalink("sheets", sheet.id),
        "createdAt": iso(sheet.created_at),
        "modifiedAt": iso(sheet.modified_at),
    }
    if with_version:
        data["version"] = sheet.version
    return data


def system_cell(column: Column, row: Row) -> dict[str, Any]:
    kind = column.system_column_type
    if kind in ("CREATED_DATE", "MODIFIED_DATE"):
        moment = row.created_at if kind == "CREATED_DATE" else row.modified_at
        return {
            "columnId": column.id,
            "value": iso(moment),
            "displayValue": moment.strftime("%m/%d/%y %I:%M %p"),
        }
    if kind in ("CREATED_BY", "MODIFIED_BY"):
        who = row.created_by if kind == "CREATED_BY" else row.modified_by
        return {"columnId": column.id, "value": who.email, "displayValue": who.name}
    return {"columnId": column.id}


def presented_type(column: Column, level: int) -> str:
    """Multi-value columns read as TEXT_NUMBER unless the request's `level` asks for them."""
    if column.type == "MULTI_CONTACT_LIST" and level < 1:
        return "TEXT_NUMBER"
    if column.type == "MULTI_PICKLIST" and level < 2:
        return "TEXT_NUMBER"
    return column.type


def column_wire(column: Column, index: int, level: int = 0, admin: bool = True) -> dict[str, Any]:
    data = column.wire(index)
    if column.locked:
        data["lockedForUser"] = not admin
    kind = presented_type(column, level)
    if kind != column.type:
        data["type"] = kind
        data.pop("options", None)
    return data


def cell_wire(
    column: Column, row: Row, level: int = 0, object_value: bool = False
) -> dict[str, Any]:
    if column.system_column_type:
        return system_cell(column, row)
    stored = row.cells.get(column.id)
    if stored is None:
        return {"columnId": column.id}
    if len(stored) == 2 and not object_value:  # the common case, kept fast for big sheets
        if stored[1] is None:
            return {"columnId": column.id, "value": stored[0]}
        return {"columnId": column.id, "value": stored[0], "displayValue": stored[1]}
    data: dict[str, Any] = {"columnId": column.id}
    if stored[0] is not None:
        data["value"] = stored[0]
    if stored[1] is not None:
        data["displayValue"] = stored[1]
    if len(stored) > 2:
        extra = stored[2]
        if "formula" in extra:
            data["formula"] = extra["formula"]
        if object_value and "values" in extra and column.type == "MULTI_PICKLIST" and level >= 2:
            data["objectValue"] = {"objectType": "MULTI_PICKLIST", "values": list(extra["values"])}
    if object_value and "objectValue" not in data and stored[0] is not None:
        if column.type == "CONTACT_LIST" and stored[1] is not None and "@" in str(stored[0]):
            data["objectValue"] = {"objectType": "CONTACT", "email": stored[0], "name": stored[1]}
        else:
            data["objectValue"] = stored[0]
    return data


class RowView:
    """How rows are written for one request: which columns, which extras."""

    def __init__(
        self,
        sheet: Sheet,
        columns: list[Column] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        level: int = 0,
        admin: bool = True,
    ) -> None:
        self.sheet = sheet
        self.admin = admin  # whether the reader may edit locked rows (lockedForUser)
        self.columns = columns if columns is not None else sheet.columns
        self.level = level
        self.object_value = "objectValue" in include
        self.column_type = "columnType" in include
        self.writer_info = "writerInfo" in include or "rowWriterInfo" in include
        self.row_permalink = "rowPermalink" in include
        self.skip_empty = "nonexistentCells" in exclude
        # Rows cache their default cells; the key says which column layout the cache was made for.
        self.plain = (
            columns is None
            and not self.column_type
            and not self.skip_empty
            and not self.object_value
        )
        self.layout = tuple(c.id for c in sheet.columns)

    def cells(self, row: Row) -> list[dict[str, Any]]:
        if self.plain:
            cached = row.wire_cells
            if cached is not None and cached[0] == self.layout:
                return cached[1]
        cells = []
        for column in self.columns:
            cell = cell_wire(column, row, self.level, self.object_value)
            if self.skip_empty and "value" not in cell:
                continue
            if self.column_type:
                cell["columnType"] = presented_type(column, self.level)
            cells.append(cell)
        if self.plain:
            row.wire_cells = (self.layout, cells)
        return cells

    def row(self, row: Row, number: int, sibling_id: int | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": row.id,
            "sheetId": self.sheet.id,
            "rowNumber": number,
        }
        if sibling_id is not None:
            data["siblingId"] = sibling_id
        if row.parent_id is not None:
            data["parentId"] = row.parent_id
        data["expanded"] = row.expanded
        if row.locked:
            data["locked"] = True
            data["lockedForUser"] = not self.admin
        data["createdAt"] = iso(row.created_at)
        data["modifiedAt"] = iso(row.modified_at)
        if self.writer_info:
            data["createdBy"] = row.created_by.contact()
            data["modifiedBy"] = row.modified_by.contact()
        if self.row_permalink:
            data["permalink"] = permalink("sheets", self.sheet.id) + f"?rowId={row.id}"
        data["cells"] = self.cells(row)
        return data


def row_context(sheet: Sheet) -> tuple[dict[int, int], dict[int, int | None]]:
    """Row numbers and siblingIds (the previous row under the same parent), in one pass."""
    numbers: dict[int, int] = {}
    siblings: dict[int, int | None] = {}
    last_child: dict[int | None, int] = {}
    for index, row in enumerate(sheet.rows):
        numbers[row.id] = index + 1
        siblings[row.id] = last_child.get(row.parent_id)
        last_child[row.parent_id] = row.id
    return numbers, siblings


def sibling_of(sheet: Sheet, row: Row) -> int | None:
    index = sheet.positions[row.id]
    for earlier in range(index - 1, -1, -1):
        candidate = sheet.rows[earlier]
        if candidate.parent_id == row.parent_id:
            return candidate.id
        if candidate.id == row.parent_id:
            return None
    return None


def rows_wire(sheet: Sheet, rows: Sequence[Row], view: RowView) -> list[dict[str, Any]]:
    if len(rows) > 50:
        numbers, siblings = row_context(sheet)
        return [view.row(row, numbers[row.id], siblings[row.id]) for row in rows]
    positions = sheet.positions
    return [view.row(row, positions[row.id] + 1, sibling_of(sheet, row)) for row in rows]
