"""Arguments for sheet tools whose parameters are structured: filters, changes, sorts, groups.

`SheetArguments` reads a request such as "show rows where Status is Blocked", "how many tasks
are Done by Owner", "set Status of row 3 to Done" or "delete row 5" into the shapes a sheet
tool's schema asks for (lists of {column, op, value}, {row_number, column, value}, …), using
the columns and dropdown options earlier tool results or the system prompt revealed. What the
request does not say is left null where the schema allows it, as a careful model would.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.azure_openai.tools import ToolArguments

QUOTE = "[\"\u201c'\u2018]"
UNQUOTE = "[\"\u201d'\u2019]"
OPERATORS = {
    "is not": "!=",
    "isn't": "!=",
    "!=": "!=",
    ">=": ">=",
    "<=": "<=",
    "is at least": ">=",
    "is at most": "<=",
    "is over": ">",
    "is above": ">",
    "is more than": ">",
    "is greater than": ">",
    "is under": "<",
    "is below": "<",
    "is less than": "<",
    "contains": "contains",
    "mentions": "contains",
    "equals": "=",
    "is": "=",
    "=": "=",
    ">": ">",
    "<": "<",
}
_OP_PATTERN = "|".join(re.escape(op) for op in sorted(OPERATORS, key=len, reverse=True))
_VALUE = rf"(?:{QUOTE}([^\"\u201d'\u2019]+){UNQUOTE}|([\w.@/-]+(?:\s+[A-Z][\w-]*)*))"


class SheetArguments(ToolArguments):
    """ToolArguments that also fill the structured parameters of sheet tools."""

    def __init__(self, message: str, intent: str | None, known, options: dict[str, list]) -> None:
        self.options = options  # column title -> dropdown options (from schemas seen)
        super().__init__(message, intent, known)

    # -- what the message says ------------------------------------------------------------------

    def _titles(self) -> list[str]:
        return list(dict.fromkeys([*self.known.columns, *self.options]))

    def _title_in(self, text: str) -> str | None:
        lowered = text.lower()
        hits = [t for t in self._titles() if re.search(rf"\b{re.escape(t.lower())}\b", lowered)]
        return max(hits, key=len) if hits else None

    def _column_with_option(self, value: str) -> str | None:
        for title, options in self.options.items():
            if any(str(o).lower() == value.lower() for o in options):
                return title
        return None

    def conditions(self) -> list[dict[str, str]] | None:
        found: list[dict[str, str]] = []
        match = re.search(
            r"\b(?:where|whose|with|that have|which have|having)\b(.*)", self.message, re.I
        )
        text = match.group(1) if match else ""
        for clause in re.split(r"\band\b|,", text):
            clause = clause.strip().rstrip("?.!")
            # Case-insensitive operators, but a value's further words must be capitalised
            # ("In Progress"), so "Blocked in Project Tracker" stops at "Blocked".
            condition = re.match(rf"(?:the\s+)?(.+?)\s+(?i:({_OP_PATTERN}))\s+{_VALUE}", clause)
            if condition:
                column = self._title_in(condition.group(1)) or condition.group(1).strip()
                value = condition.group(3) or condition.group(4)
                found.append(
                    {"column": column, "op": OPERATORS[condition.group(2).lower()], "value": value}
                )
        if not found:
            # "how many tasks are Blocked", "show the Done rows": a dropdown option named alone.
            for title, options in self.options.items():
                for option in options:
                    if re.search(rf"\b{re.escape(str(option))}\b", self.message):
                        found.append({"column": title, "op": "=", "value": str(option)})
                        break
                if found:
                    break
        return found or None

    def names_a_value(self) -> bool:
        """Whether the message names a value ("… are Blocked") that is not the sheet's name, a
        column's title or the first word: a condition, once the columns' options are known."""
        if self._operation() not in (None, "count"):
            return False  # "the total Amount": a capitalised word there is the column summed
        named = set((self.sheet_name or "").lower().split())
        for title in [*self._titles(), self.column or "", self._group_by() or ""]:
            named.update(title.lower().split())
        for sentence in re.split(r"[.?!]\s+", self.message.strip()):
            for word in re.findall(r"[\w'-]+", sentence)[1:]:
                if word[0].isupper() and word.lower() not in named and word != "I":
                    return True
        return False

    def _group_by(self) -> str | None:
        match = re.search(
            r"\b(?:by|per|for each|grouped by)\s+(?:the\s+)?([\w ]+)", self.message, re.I
        )
        if not match:
            return None
        return self._title_in(match.group(1)) or match.group(1).split()[0]

    def _measured_column(self) -> str | None:
        match = re.search(
            r"\b(?:sum|total|average|mean|avg|minimum|maximum|min|max|highest|lowest)\s+"
            r"(?:of\s+)?(?:the\s+)?([\w ]+)",
            self.message,
            re.I,
        )
        if not match:
            return None
        return self._title_in(match.group(1)) or match.group(1).split()[0]

    def _sort(self) -> dict[str, Any] | None:
        match = re.search(
            r"\b(?:sorted|ordered|sort|order)\s+by\s+(?:the\s+)?([\w ]+)", self.message, re.I
        )
        if not match:
            return None
        column = self._title_in(match.group(1)) or match.group(1).split()[0]
        descending = bool(re.search(r"\bdesc|\bhighest first|\bnewest first", self.message, re.I))
        return {"column": column, "descending": descending}

    def _new_value(self, column: str | None) -> str | None:
        """The value after "to", without a trailing "in <sheet>", fitted to a dropdown option."""
        value = self.value
        if value is None:
            return None
        match = re.match(
            r"(.+?)\s+(?:in|on|of)\s+(?:the\s+)?(?:sheet\b|[\"\u201c'\u2018]?[A-Z])", value
        )
        if match:
            value = match.group(1)
        options = sorted(
            self.options.get(column or "", []), key=lambda o: len(str(o)), reverse=True
        )
        for option in options:
            if value.lower().startswith(str(option).lower()):
                return str(option)
        return value

    def changes(self) -> list[dict[str, Any]] | None:
        row = self._row()
        if row is None or self.value is None:
            return None
        column = self._title_in(self.message.split(" to ")[0])
        value = self._new_value(column)
        column = column or self._column_with_option(value) or self.column
        if column is None:
            return None
        return [{"row_id": None, "row_number": row, "column": column, "value": value}]

    def row_numbers(self) -> list[int] | None:
        numbers = re.findall(
            r"\brows?\s*(?:#|number|no\.?)?\s*(\d+(?:\s*(?:,|and)\s*\d+)*)", self.message, re.I
        )
        found = [int(n) for group in numbers for n in re.findall(r"\d+", group)]
        return found or None

    def new_rows(self) -> list[dict[str, Any]] | None:
        pairs = re.findall(
            rf"([A-Z][\w ]*?)\s*(?::|=|of)?\s*{QUOTE}([^\"\u201d'\u2019]+){UNQUOTE}", self.message
        )
        cells = []
        for title, value in pairs:
            column = self._title_in(title)
            if column:
                cells.append({"column": column, "value": value})
        return [{"cells": cells}] if cells else None

    # -- the Guesser protocol ---------------------------------------------------------------

    def _guess(self, name: str, description: str, kind: str, schema: dict[str, Any]) -> Any:
        simple = name.lower()
        if simple == "filters":
            return self.conditions()
        if simple == "changes":
            return self.changes()
        if simple == "row_numbers":
            return self.row_numbers()
        if simple == "row_ids":
            return None
        if simple == "row_id":
            return None
        if simple == "row_number":
            return self._row()
        if simple == "rows" and kind == "array":
            return self.new_rows()
        if simple == "sort":
            return self._sort()
        if simple == "group_by":
            return self._group_by()
        if simple == "column" and self.intent == "aggregate":
            return None if self._operation() in (None, "count") else self._measured_column()
        if simple in ("search", "columns", "offset", "name_contains", "name"):
            return None
        if simple == "limit":
            match = re.search(r"\b(?:first|top|limit)\s+(\d+)", self.message, re.I)
            return int(match.group(1)) if match else None
        if simple in ("target_column", "target", "output_column"):
            match = re.search(
                rf"\b(?:fill|into|write to)\s+(?:in\s+)?(?:the\s+|a\s+)?(?:new\s+)?{QUOTE}?"
                rf"([A-Za-z][\w ]*?){UNQUOTE}?\s+column",
                self.message,
                re.I,
            )
            if match:
                return match.group(1)
        if simple == "operation":
            return self._operation(schema.get("enum")) or "count"
        return super()._guess(name, description, kind, schema)
