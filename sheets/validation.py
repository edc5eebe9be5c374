"""What a person typed into a cell, checked the way Smartsheet checks it, turned into an API value.

Writes go out with strict parsing (the API's default), so what is sent is what is stored: a
string stays a string even in a TEXT_NUMBER column. That is why numbers are recognised here and
sent as JSON numbers, as Smartsheet's own grid does when someone types 42, while text that is not
plainly a number ("007", "1,5", "0.50 kg") is sent as the text typed. The rules per column type
follow Smartsheet's strict rules (see README, "Editing"): dates as YYYY-MM-DD, checkboxes true or
false, a picklist's options when the column restricts values to them, an email for contacts,
4,000 characters at most. A value starting with "=" is a formula. Multi-picklist and
multi-contact cells parse to a list (written as the API's objectValue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sheets.models import Column

MAX_CELL_CHARS = 4000
# Smartsheet fills these itself; the API refuses writes to them (1046).
SYSTEM_COLUMN_TYPES = frozenset(
    {"AUTO_NUMBER", "CREATED_BY", "CREATED_DATE", "MODIFIED_BY", "MODIFIED_DATE"}
)
# Column types this app cannot edit (Smartsheet computes them or needs project settings).
READ_ONLY_TYPES = frozenset({"DURATION", "PREDECESSOR", "ABSTRACT_DATETIME"})
# A number as people type one: no leading zeros (those are codes, kept as text), an optional
# sign and decimals.
_NUMBER = re.compile(r"^[-+]?(0|[1-9]\d*)(\.\d+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = frozenset({"true", "yes", "1", "on", "checked", "x"})
_FALSE = frozenset({"false", "no", "0", "off", "unchecked", ""})


class CellInvalid(ValueError):
    """The value cannot go into this cell; `message` tells the person what to enter instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Formula:
    text: str


def column_read_only_reason(column: Column) -> str:
    """Why nobody can edit this column here ("" when it can be edited)."""
    if column.system_column_type or column.type in SYSTEM_COLUMN_TYPES:
        return f"“{column.title}” is filled in by Smartsheet itself and cannot be edited."
    if column.locked:
        return (
            f"The column “{column.title}” is locked in Smartsheet; ask the sheet's owner to "
            "unlock it."
        )
    if column.type in READ_ONLY_TYPES:
        return f"“{column.title}” cannot be edited here; change it in Smartsheet."
    return ""


def cell_value_parse(*, column: Column, text: str) -> object:
    """The API value for `text` typed into `column`; None clears the cell.

    Raises CellInvalid with a sentence for the person. Formula text returns a `Formula`.
    """
    reason = column_read_only_reason(column)
    if reason:
        raise CellInvalid(reason)
    if len(text) > MAX_CELL_CHARS:
        raise CellInvalid(
            f"A cell holds at most {MAX_CELL_CHARS:,} characters; this text has "
            f"{len(text):,}. Shorten it."
        )
    if text.startswith("="):
        if len(text.strip()) == 1:
            raise CellInvalid("Write a formula after the “=”, for example =SUM([Cost]:[Cost]).")
        return Formula(text)
    stripped = text.strip()
    if stripped == "" and column.type != "CHECKBOX":
        return None
    parse = _PARSERS.get(column.type, _text_or_number)
    return parse(column, stripped, text)


def _text_or_number(column: Column, stripped: str, text: str) -> object:
    if _NUMBER.match(stripped):
        number = float(stripped)
        if "." not in stripped and abs(number) < 2**53:
            return int(stripped)
        return number
    return text


def _date(column: Column, stripped: str, text: str) -> str:
    try:
        if len(stripped) == 10:
            return date.fromisoformat(stripped).isoformat()
    except ValueError:
        pass
    raise CellInvalid("Enter a date like 2026-11-30 (year-month-day), or leave the cell empty.")


def _checkbox(column: Column, stripped: str, text: str) -> bool:
    lowered = stripped.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CellInvalid("A checkbox is either checked or not: enter true or false.")


def _picklist(column: Column, stripped: str, text: str) -> str:
    if not column.validation or stripped in column.options:
        return stripped
    return _option_missing(column, stripped)


def _multi_picklist(column: Column, stripped: str, text: str) -> list[str]:
    """Options typed separated by commas or new lines; written as an objectValue (the API takes
    several options no other way)."""
    chosen = [part.strip() for part in re.split(r"[\n,]", stripped) if part.strip()]
    if column.validation:
        for option in chosen:
            if option not in column.options:
                _option_missing(column, option)
    return chosen


def _option_missing(column: Column, value: str):
    options = ", ".join(f"“{o}”" for o in column.options[:10])
    more = " …" if len(column.options) > 10 else ""
    raise CellInvalid(
        f"“{value}” is not an option of “{column.title}”; choose one of {options}{more}."
    )


def _contact(column: Column, stripped: str, text: str) -> str:
    if _EMAIL.match(stripped):
        return stripped
    raise CellInvalid("Enter the person's email address, like name@example.com.")


def _contacts(column: Column, stripped: str, text: str) -> list[str]:
    emails = [part.strip() for part in re.split(r"[\n,;]", stripped) if part.strip()]
    for email in emails:
        if not _EMAIL.match(email):
            raise CellInvalid(
                f"“{email}” is not an email address; enter addresses separated by commas."
            )
    return emails


_PARSERS = {
    "TEXT_NUMBER": _text_or_number,
    "DATE": _date,
    "CHECKBOX": _checkbox,
    "PICKLIST": _picklist,
    "MULTI_PICKLIST": _multi_picklist,
    "CONTACT_LIST": _contact,
    "MULTI_CONTACT_LIST": _contacts,
}
