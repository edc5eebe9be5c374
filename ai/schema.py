"""JSON schemas for structured output from plain column descriptions, and checking the values.

`ai` does not know the Sheet models: callers describe each column as a `Column` (title, Smartsheet
column type, picklist options).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from ai.errors import InvalidOutputError


@dataclass(frozen=True)
class Column:
    title: str
    type: str  # Smartsheet column type: TEXT_NUMBER, PICKLIST, MULTI_PICKLIST, CHECKBOX, DATE, …
    options: tuple[str, ...] = ()
    # A TEXT_NUMBER column meant to hold numbers (a score, an amount).
    numeric: bool = False
    description: str = ""


def column_schema(column: Column) -> dict[str, Any]:
    kind = column.type.upper()
    schema: dict[str, Any]
    if kind in ("PICKLIST", "MULTI_PICKLIST"):
        if not column.options:
            raise ValueError(
                f"Column {column.title!r} is a {kind} without options: give its options so the "
                "model can only choose among them."
            )
        choice = {"type": "string", "enum": list(column.options)}
        schema = choice if kind == "PICKLIST" else {"type": "array", "items": choice}
    elif kind == "CHECKBOX":
        schema = {"type": "boolean"}
    elif kind == "DATE":
        schema = {"type": "string", "format": "date"}
    elif kind == "TEXT_NUMBER" and column.numeric:
        schema = {"type": "number"}
    else:  # TEXT_NUMBER and every other kind is written as text
        schema = {"type": "string"}
    description = column.description or _default_description(kind)
    if description:
        schema["description"] = description
    return schema


def _default_description(kind: str) -> str:
    return {"DATE": "A date as YYYY-MM-DD.", "CHECKBOX": "true or false."}.get(kind, "")


def values_schema(columns: Sequence[Column]) -> dict[str, Any]:
    """An object with one required property per column title (strict mode wants them all)."""
    titles = [c.title for c in columns]
    if len(set(titles)) != len(titles):
        raise ValueError(f"Column titles must be unique, got {titles}.")
    return {
        "type": "object",
        "properties": {c.title: column_schema(c) for c in columns},
        "required": titles,
        "additionalProperties": False,
    }


def response_format_for(columns: Sequence[Column], *, name: str = "row_values") -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": values_schema(columns)},
    }


@functools.lru_cache(maxsize=64)
def _validator(columns: tuple[Column, ...]) -> jsonschema.Draft202012Validator:
    """Built once per set of columns (a job asks the same columns for every row)."""
    return jsonschema.Draft202012Validator(
        values_schema(columns), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def values_validate(columns: Sequence[Column], data: Any) -> dict[str, Any]:
    """The values when they match the columns; InvalidOutputError saying what is wrong if not."""
    errors = sorted(
        _validator(tuple(columns)).iter_errors(data), key=lambda e: list(e.absolute_path)
    )
    if errors:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or 'the reply'}: {e.message}"
            for e in errors[:5]
        )
        raise InvalidOutputError(f"The model's values do not fit the columns: {problems}.")
    return dict(data)
