"""Column definitions from requests: Smartsheet's rules for new and changed columns.

Attributes the sandbox does not store (column formulas, checkbox symbols, system column types,
auto-number formats, formats, contact options) are refused with 1032 rather than dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.smartsheet.formulas import formulas_recompute
from sandbox.smartsheet.model import (
    COLUMN_TYPES,
    ApiError,
    Column,
    Sheet,
    missing_attribute,
    not_allowed,
    unparseable,
)

WRITABLE = {"title", "type", "primary", "options", "width", "description", "hidden", "locked"}
WRITABLE |= {"validation", "index"}
READ_ONLY = {"id", "version", "sheetId", "tags", "lockedForUser"}
OPTION_TYPES = ("PICKLIST", "MULTI_PICKLIST")


def _check_attributes(body: dict[str, Any]) -> None:
    refused = [f"column.{k}" for k in body if k not in WRITABLE | READ_ONLY]
    if refused:
        raise not_allowed(refused)


def _check_type(kind: Any) -> None:
    if kind not in COLUMN_TYPES:
        raise unparseable(f"column type {kind!r} is not one of {', '.join(sorted(COLUMN_TYPES))}.")


def column_titles_check(columns: list[Column]) -> None:
    titles = [c.title for c in columns]
    if len(set(titles)) != len(titles):
        raise ApiError(400, 1056, "Column titles must be unique.")


def column_new(*, new_id: Callable[[], int], body: dict[str, Any], allow_primary: bool) -> Column:
    """A new column from a request (POST /sheets or POST /sheets/{id}/columns); raises ApiError."""
    _check_attributes(body)
    title, kind = body.get("title"), body.get("type")
    if not title:
        raise missing_attribute("column.title")
    if not kind:
        raise missing_attribute("column.type")
    _check_type(kind)
    primary = bool(body.get("primary"))
    if primary and not allow_primary:
        raise ApiError(400, 1055, "One and only one column must be primary.")
    if primary and kind != "TEXT_NUMBER":
        raise ApiError(400, 1057, "Primary columns must be of type TEXT_NUMBER.")
    options = body.get("options") or []
    if not isinstance(options, list):
        raise unparseable("column.options must be an array of strings.")
    if options and kind not in OPTION_TYPES:
        raise ApiError(400, 1060, f"Column options are not allowed for column type {kind}.")
    return Column(
        id=new_id(),
        title=str(title),
        type=kind,
        primary=primary,
        options=[str(o) for o in options],
        width=int(body.get("width") or 150),
        description=body.get("description"),
        hidden=bool(body.get("hidden")),
        locked=bool(body.get("locked")),
        validation=bool(body.get("validation")),
    )


def column_update(sheet: Sheet, column: Column, body: dict[str, Any]) -> None:
    """Apply PUT /sheets/{id}/columns/{columnId}; raises ApiError before changing anything."""
    _check_attributes(body)
    kind = body.get("type", column.type)
    _check_type(kind)
    if column.primary and kind != "TEXT_NUMBER":
        raise ApiError(400, 1057, "Primary columns must be of type TEXT_NUMBER.")
    if column.system_column_type and kind != column.type:
        raise ApiError(
            400,
            1046,
            "Cells containing system values cannot be inserted or updated through the API, "
            f"columnId : {column.id}.",
        )
    title = body.get("title", column.title)
    if any(c.title == title and c is not column for c in sheet.columns):
        raise ApiError(400, 1056, "Column titles must be unique.")
    options = body.get("options", column.options)
    if options and kind not in OPTION_TYPES:
        raise ApiError(400, 1060, f"Column options are not allowed for column type {kind}.")
    index = body.get("index")
    if index is not None and (not isinstance(index, int) or not 0 <= index < len(sheet.columns)):
        raise unparseable(f"column.index must be between 0 and {len(sheet.columns) - 1}.")
    column.title, column.type, column.options = str(title), kind, [str(o) for o in options]
    for name in ("width", "description", "hidden", "locked", "validation"):
        if name in body:
            setattr(column, name, body[name])
    if index is not None:
        sheet.columns.remove(column)
        sheet.columns.insert(index, column)
    formulas_recompute(sheet=sheet)  # a new type may no longer hold a formula's result
