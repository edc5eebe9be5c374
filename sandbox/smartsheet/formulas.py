"""Cell formulas: a small documented subset of Smartsheet's language, computed like the real thing.

Supported: numbers, "text", `+ - * /` and parentheses over `[Column]@row` (or `Column@row` for a
one-word title), and SUM / COUNT / AVG over a whole column `[Column]:[Column]` or a list of
arguments. `+` joins text, as Smartsheet's does. Anything else stores `#UNPARSEABLE`. Errors are
values, as in Smartsheet (the write itself succeeds): #DIVIDE BY ZERO, #INVALID OPERATION
(arithmetic on text), #CIRCULAR REFERENCE, #REF (the column was deleted), #INVALID COLUMN VALUE
(a result the column's type cannot hold, e.g. a number in a DATE column).

References are resolved to column ids when the formula is written, so renaming a column keeps the
formula working (Smartsheet rewrites the text; the sandbox keeps the text as written).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.smartsheet.model import Column, Row, Sheet

UNPARSEABLE = "#UNPARSEABLE"
FUNCTIONS = ("SUM", "COUNT", "AVG")
TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?)
      | "(?P<text>[^"]*)"
      | \[(?P<range_from>[^\]]+)\]:\[(?P<range_to>[^\]]+)\]
      | \[(?P<bracketed>[^\]]+)\]@row
      | (?P<bare>[A-Za-z_][A-Za-z0-9_]*)@row
      | (?P<function>[A-Za-z]+)\s*\(
      | (?P<op>[-+*/(),])
    )""",
    re.VERBOSE,
)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _fits(kind: str, value: Any) -> bool:
    """Whether a column of this type can hold a formula's result (else #INVALID COLUMN VALUE)."""
    if value is None or kind in ("TEXT_NUMBER", "PICKLIST"):
        return True
    if kind == "DATE":
        return isinstance(value, str) and ISO_DATE.match(value) is not None
    return kind == "CONTACT_LIST" and isinstance(value, str)


class FormulaError(Exception):
    """A formula that evaluates to one of Smartsheet's #ERROR values."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class _Parser:
    def __init__(self, text: str, columns: dict[str, int]) -> None:
        self.tokens = self._tokenize(text)
        self.position = 0
        self.columns = columns

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, Any]]:
        tokens, index = [], 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            match = TOKEN.match(text, index)
            if match is None:
                raise FormulaError(UNPARSEABLE)
            kind = match.lastgroup
            if kind == "range_to":
                tokens.append(("range", (match["range_from"], match["range_to"])))
            else:
                tokens.append((kind, match[kind]))
            index = match.end()
        return tokens

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise FormulaError(UNPARSEABLE)
        self.position += 1
        return token

    def column(self, title: str) -> int:
        if title not in self.columns:
            raise FormulaError(UNPARSEABLE)
        return self.columns[title]

    def parse(self) -> tuple:
        node = self.expression()
        if self.peek() is not None:
            raise FormulaError(UNPARSEABLE)
        return node

    def expression(self) -> tuple:
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            node = ("bin", self.take()[1], node, self.term())
        return node

    def term(self) -> tuple:
        node = self.factor()
        while self.peek() in (("op", "*"), ("op", "/")):
            node = ("bin", self.take()[1], node, self.factor())
        return node

    def factor(self) -> tuple:
        kind, value = self.take()
        if kind == "number":
            return ("value", float(value) if "." in value else int(value))
        if kind == "text":
            return ("value", value)
        if kind in ("bracketed", "bare"):
            return ("ref", self.column(value))
        if (kind, value) == ("op", "-"):
            return ("neg", self.factor())
        if (kind, value) == ("op", "("):
            node = self.expression()
            if self.take() != ("op", ")"):
                raise FormulaError(UNPARSEABLE)
            return node
        if kind == "function" and value.upper() in FUNCTIONS:
            return ("call", value.upper(), tuple(self.arguments()))
        raise FormulaError(UNPARSEABLE)

    def arguments(self) -> list[tuple]:
        arguments = []
        while True:
            token = self.peek()
            if token is not None and token[0] == "range":
                first, last = self.take()[1]
                if first != last:  # only whole columns: [A]:[A]
                    raise FormulaError(UNPARSEABLE)
                arguments.append(("column", self.column(first)))
            else:
                arguments.append(self.expression())
            separator = self.take()
            if separator == ("op", ")"):
                return arguments
            if separator != ("op", ","):
                raise FormulaError(UNPARSEABLE)


def compile_formula(text: str, columns: list[Column]) -> tuple | str:
    """The formula's tree with column ids, or UNPARSEABLE; `text` starts with "="."""
    try:
        return _Parser(text[1:], {c.title: c.id for c in columns}).parse()
    except FormulaError as error:
        return error.value


def _number(value: Any) -> int | float:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormulaError("#INVALID OPERATION")
    return value


class _Evaluation:
    """One recomputation of a sheet: memoised cell values, cycle detection, column aggregates."""

    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet
        self.columns = {c.id: c for c in sheet.columns}
        self.values: dict[tuple[int, int], Any] = {}
        self.visiting: set[tuple[int, int]] = set()

    def cell(self, row: Row, column_id: int) -> Any:
        if column_id not in self.columns:
            raise FormulaError("#REF")
        stored = row.cells.get(column_id)
        if stored is None:
            return None
        if len(stored) < 3 or "formula" not in stored[2]:
            return stored[0]
        key = (row.id, column_id)
        if key not in self.values:
            if key in self.visiting:
                raise FormulaError("#CIRCULAR REFERENCE")
            self.visiting.add(key)
            try:
                self.values[key] = self.result(row, self.columns[column_id], stored[2]["program"])
            finally:
                self.visiting.discard(key)
        value = self.values[key]
        if isinstance(value, str) and value.startswith("#") and value in ERRORS:
            raise FormulaError(value)
        return value

    def result(self, row: Row, column: Column, program: tuple | str) -> Any:
        """The value a formula cell shows: its result, or the #ERROR it ran into."""
        if isinstance(program, str):
            return program
        try:
            value = self.evaluate(program, row)
        except FormulaError as error:
            return error.value
        except RecursionError:
            return UNPARSEABLE
        if not _fits(column.type, value):
            return "#INVALID COLUMN VALUE"
        if isinstance(value, float):
            value = round(value, 10)
            if value.is_integer():
                value = int(value)
        return value

    def evaluate(self, node: tuple, row: Row) -> Any:
        kind = node[0]
        if kind == "value":
            return node[1]
        if kind == "ref":
            return self.cell(row, node[1])
        if kind == "neg":
            return -_number(self.evaluate(node[1], row))
        if kind == "call":
            return self.call(node[1], node[2], row)
        op, left, right = node[1], self.evaluate(node[2], row), self.evaluate(node[3], row)
        if op == "+" and (isinstance(left, str) or isinstance(right, str)):
            return f"{_text(left)}{_text(right)}"
        a, b = _number(left), _number(right)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise FormulaError("#DIVIDE BY ZERO")
        return a / b

    def call(self, name: str, arguments: tuple, row: Row) -> Any:
        values: list[Any] = []
        for argument in arguments:
            if argument[0] == "column":
                if argument[1] not in self.columns:
                    raise FormulaError("#REF")
                values.extend(self.cell(other, argument[1]) for other in self.sheet.rows)
            else:
                values.append(self.evaluate(argument, row))
        if name == "COUNT":
            return sum(1 for v in values if v is not None and v != "")
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if name == "SUM":
            return sum(numbers)
        if not numbers:
            raise FormulaError("#DIVIDE BY ZERO")
        return sum(numbers) / len(numbers)


ERRORS = {
    UNPARSEABLE,
    "#DIVIDE BY ZERO",
    "#INVALID OPERATION",
    "#CIRCULAR REFERENCE",
    "#REF",
    "#INVALID COLUMN VALUE",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def formulas_recompute(*, sheet: Sheet) -> None:
    """Recompute every formula cell of the sheet and swap in the rows whose values changed.

    Only rows that hold formulas are visited (`sheet.formula_rows`), so sheets without formulas,
    like the 20,000-row demo sheet, pay nothing.
    """
    if not sheet.formula_rows:
        return
    evaluation = _Evaluation(sheet)
    for row_id in list(sheet.formula_rows):
        row = sheet.rows_by_id.get(row_id)
        if row is None:
            sheet.formula_rows.discard(row_id)
            continue
        new_cells = None
        for column_id, stored in row.cells.items():
            if len(stored) < 3 or "formula" not in stored[2]:
                continue
            column = evaluation.columns.get(column_id)
            if column is None:
                continue  # the column is gone; nothing reads its cells
            try:
                value = evaluation.cell(row, column_id)
            except FormulaError as error:
                value = error.value
            display = None if value is None else _text(value)
            if (value, display) != stored[:2]:
                new_cells = new_cells or dict(row.cells)
                new_cells[column_id] = (value, display, stored[2])
        if new_cells is not None:
            sheet.replace_row(replace(row, cells=new_cells, wire_cells=None))
