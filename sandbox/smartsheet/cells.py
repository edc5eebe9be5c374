"""One request cell → its stored form, with Smartsheet's parsing and validation rules.

Strict parsing (the default) takes values as typed: text stays text, even "0", and numbers stay
numbers; each column type has its own strict rule (1042 when broken). Lenient parsing
(`"strict": false`) stores what it can, turning numeric text into numbers in TEXT_NUMBER columns;
a column with `validation` on still refuses values outside its limits unless the cell also says
`overrideValidation` (sheet admins only). Attributes the sandbox does not store are refused
(1032) rather than dropped, so a client never believes it wrote something it did not.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sandbox.smartsheet.model import (
    MAX_CELL_CHARS,
    ApiError,
    Cell,
    Column,
    User,
    missing_attribute,
    not_allowed,
    unparseable,
)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Lenient parsing stores numeric text in TEXT_NUMBER cells as numbers; "007" stays text.
NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")
# Read-only attributes a client may echo back from a read; Smartsheet ignores them on writes.
READ_ONLY = {"displayValue", "columnType", "conditionalFormat", "modifiedAt", "modifiedBy"}
WRITABLE = {"columnId", "value", "objectValue", "formula", "strict", "overrideValidation"}
# Stored by Smartsheet, not by the sandbox: refused rather than silently dropped.
UNSTORED = ("format", "hyperlink", "linkInFromCell", "image", "altText")
FORMULA_BESIDE = ("value", "objectValue", "image", "hyperlink", "linkInFromCell")


def display_for(column: Column, value: Any, users_by_email: dict[str, User]) -> str | None:
    """Smartsheet's displayValue: none for real checkboxes and dates, text for the rest."""
    if column.type == "CHECKBOX" and isinstance(value, bool):
        return None
    if column.type == "DATE" and isinstance(value, str) and ISO_DATE.match(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if column.type == "CONTACT_LIST" and isinstance(value, str) and value in users_by_email:
        return users_by_email[value].name
    return str(value)


def _violation(column: Column, value: Any) -> ApiError:
    return ApiError(
        400,
        1042,
        f"The value for cell in column {column.id}, {value}, did not conform to the strict "
        f"requirements for type {column.type}.",
    )


def _wrong_object(column: Column, allowed: str) -> ApiError:
    return ApiError(
        400,
        1131,
        f"cell.objectValue for column {column.id} was of the wrong object type. "
        f"Allowed types: {allowed}.",
    )


def _check_attributes(cell: dict[str, Any]) -> None:
    unstored = [name for name in UNSTORED if cell.get(name) is not None]
    unknown = [name for name in cell if name not in WRITABLE | READ_ONLY | set(UNSTORED)]
    refused = [f"cell.{name}" for name in unstored + unknown]
    if refused:
        raise not_allowed(refused)


def _multi_picklist(values: list[str]) -> Cell:
    text = ", ".join(values)
    return (text, text, {"values": values})


def _object_value(
    column: Column, value: Any, users_by_email: dict[str, User], validate: bool
) -> Cell | None:
    """objectValue writes: MULTI_PICKLIST, CONTACT and DATE objects, or a plain primitive."""
    if not isinstance(value, dict):
        return _primitive(column, value, strict=True, validate=validate, users=users_by_email)
    kind = value.get("objectType")
    if column.type == "MULTI_PICKLIST":
        values = value.get("values")
        if kind != "MULTI_PICKLIST":
            raise _wrong_object(column, "MULTI_PICKLIST")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise unparseable("objectValue.values must be an array of strings.")
        if validate and any(v not in column.options for v in values):
            raise _violation(column, ", ".join(values))
        return _multi_picklist(values) if values else None
    if column.type == "CONTACT_LIST":
        email = value.get("email")
        if kind != "CONTACT":
            raise _wrong_object(column, "CONTACT")
        if not (isinstance(email, str) and EMAIL.match(email)):
            raise _violation(column, email)
        user = users_by_email.get(email)
        return (email, value.get("name") or (user.name if user else email))
    if column.type == "DATE":
        if kind != "DATE":
            raise _wrong_object(column, "DATE")
        return _primitive(column, value.get("value"), strict=True, validate=True, users={})
    raise _wrong_object(column, "a string, number or boolean")


def _primitive(
    column: Column, value: Any, *, strict: bool, validate: bool, users: dict[str, User]
) -> Cell | None:
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            raise ApiError(
                400,
                1041,
                f"The value for cell in column {column.id} must be {MAX_CELL_CHARS} characters "
                f"in length or less, but was {len(value)}.",
            )
        if value == "":
            # Smartsheet turns "" in a checkbox into an unchecked box rather than an empty cell.
            return (False, None) if column.type == "CHECKBOX" else None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
    elif not isinstance(value, bool):
        raise ApiError(400, 1038, "Invalid Cell value. Must be numeric or a string.")
    kind = column.type
    # Strict parsing, or lenient parsing on a column whose validation is on, checks the type.
    if strict or validate:
        if kind == "DATE":
            if not (isinstance(value, str) and ISO_DATE.match(value)):
                raise _violation(column, value)
            try:
                date.fromisoformat(value)
            except ValueError:
                raise _violation(column, value) from None
            return (value, None)
        if kind == "CHECKBOX":
            if not isinstance(value, bool):
                raise _violation(column, value)
            return (value, None)
        if kind == "PICKLIST":
            if str(value) not in column.options:
                raise _violation(column, value)
            return (str(value), str(value))
        if kind == "CONTACT_LIST":
            if not (isinstance(value, str) and EMAIL.match(value)):
                raise _violation(column, value)
            return (value, display_for(column, value, users))
        if kind == "MULTI_PICKLIST":
            if validate and str(value) not in column.options:
                raise _violation(column, value)
            return _multi_picklist([str(value)])
    elif kind == "CHECKBOX" and isinstance(value, bool):
        return (value, None)
    if not strict and kind == "TEXT_NUMBER" and isinstance(value, str) and NUMBER.match(value):
        number = float(value)
        value = int(number) if number.is_integer() and "." not in value else number
    if isinstance(value, bool):
        return (value, "true" if value else "false")
    if isinstance(value, int | float):
        return (value, str(value))
    return (value, value)


def coerce_cell(
    column: Column,
    cell: dict[str, Any],
    users_by_email: dict[str, User],
    *,
    admin: bool,
    override_validation: bool = False,
) -> Cell | None:
    """The stored form of a cell from a request, or None to clear it; raises ApiError.

    A formula cell comes back with value None: the sheet computes it once the write is in.
    """
    _check_attributes(cell)
    if column.system_column_type:
        raise ApiError(
            400,
            1046,
            "Cells containing system values cannot be inserted or updated through the API, "
            f"columnId : {column.id}.",
        )
    formula = cell.get("formula")
    if formula is not None:
        if any(cell.get(name) is not None for name in FORMULA_BESIDE):
            raise ApiError(
                400,
                1163,
                "If cell.formula is specified, then value, objectValue, image, hyperlink, and "
                "linkInFromCell must not be specified.",
            )
        if not isinstance(formula, str) or not formula.startswith("="):
            raise ApiError(400, 1162, "A formula must always start with an equal sign (=).")
        return (None, None, {"formula": formula})
    override = cell.get("overrideValidation") is True or override_validation
    strict = cell.get("strict", True) is not False
    if override and not strict and not admin:
        raise ApiError(403, 1212, "You must be a sheet admin to override validation.")
    validate = column.validation and not (override and not strict)
    if "objectValue" in cell and cell["objectValue"] is not None:
        if cell.get("value") is not None:
            raise ApiError(400, 1130, "One of cell.value or objectValue may be set, but not both.")
        return _object_value(column, cell["objectValue"], users_by_email, validate)
    if "value" not in cell:
        raise missing_attribute("cell.value")
    if cell["value"] is None:
        return None  # an explicit null clears the cell, as "" does
    return _primitive(column, cell["value"], strict=strict, validate=validate, users=users_by_email)
