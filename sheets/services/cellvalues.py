"""Cells in the API's shapes: what is sent to write a value, and how a read cell compares.

The mirror keeps a cell as the API's JSON minus its columnId ({"value", "displayValue",
"formula"}, empty keys left out); these helpers speak that form.
"""

from __future__ import annotations

from typing import Any

from sheets.models import Column
from sheets.validation import Formula

_CELL_KEYS = ("value", "displayValue", "formula")


def mirror_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell of the API's JSON in the mirror's form (empty keys left out)."""
    return {k: cell[k] for k in _CELL_KEYS if cell.get(k) is not None}


def cell_display(cell: dict[str, Any]) -> str:
    if "displayValue" in cell:
        return str(cell["displayValue"])
    value = cell.get("value")
    return "" if value is None else str(value)


def _comparable(value: Any) -> tuple | None:
    # An unchecked checkbox may come back empty or false: the same to the person.
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, list):  # several options or contacts: read back as "A, B"
        return _comparable(", ".join(str(v) for v in value))
    return ("text", str(value))


def cell_holds(cell: dict[str, Any], value: Any) -> bool:
    """Does the cell (mirror form) hold `value`? A formula is compared by its text."""
    if isinstance(value, Formula):
        return cell.get("formula") == value.text
    if isinstance(value, str) and value.startswith("=") and cell.get("formula"):
        return cell["formula"] == value
    if cell.get("formula") and value is not None and value == cell.get("value"):
        return True
    return _comparable(cell.get("value")) == _comparable(value)


def cell_payload(column: Column, value: Any) -> dict[str, Any]:
    """The API cell that writes `value` (None or "" clears the cell)."""
    if isinstance(value, Formula):
        return {"columnId": column.id, "formula": value.text}
    if value is None or value == []:
        return {"columnId": column.id, "value": ""}
    if isinstance(value, list):
        if column.type == "MULTI_CONTACT_LIST":
            values = [{"objectType": "CONTACT", "email": email} for email in value]
            return {
                "columnId": column.id,
                "objectValue": {"objectType": "MULTI_CONTACT", "values": values},
            }
        return {
            "columnId": column.id,
            "objectValue": {"objectType": "MULTI_PICKLIST", "values": value},
        }
    cell: dict[str, Any] = {"columnId": column.id, "value": value}
    if column.type == "PICKLIST" and not column.validation and value not in column.options:
        # Free text in an unrestricted picklist: strict parsing would refuse it.
        cell["strict"] = False
    return cell


def stored_value(value: Any) -> tuple[Any, str]:
    """(JSON value, formula text) for the journal."""
    if isinstance(value, Formula):
        return None, value.text
    return value, ""


def remote_cells(row: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(c["columnId"]): mirror_cell(c) for c in row.get("cells") or ()}


def sdk_row_dict(row) -> dict[str, Any]:
    """An SDK Row from a write answer in the API's JSON shape (cells and modifiedAt only)."""
    return {
        "id": int(row.id),
        "modifiedAt": row.modified_at,
        "cells": [cell.to_dict() for cell in row.cells or ()],
    }


def sdk_row_cells(row) -> dict[str, dict[str, Any]]:
    """The mirror's `cells` for an SDK Row from a write answer."""
    return {str(pk): cell for pk, cell in remote_cells(sdk_row_dict(row)).items() if cell}
