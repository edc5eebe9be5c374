"""A job's prompt: `{{Column Title}}` references, the messages sent per row, and the output's
shape, which follows the target column's type (structured output, see ai/schema.py)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from ai.calls import CallContext
from ai.errors import InvalidOutputError
from ai.schema import Column as OutputColumn
from ai.services import ChatResult, structured_call
from sheets.models import Column, Row
from sheets.validation import MAX_CELL_CHARS

REFERENCE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")
OUTPUT_KEY = "value"
SYSTEM = (
    "You fill one column of a spreadsheet, one row at a time. Follow the instruction, using the "
    "row's values given with it. Answer with the value for the column only."
)


class TemplateInvalid(ValueError):
    """The template cannot run as written; `message` says what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def template_columns(*, template: str, columns: Sequence[Column]) -> list[Column]:
    """The columns a template references, in order of first use.

    Unknown titles raise TemplateInvalid naming the closest titles of the sheet.
    """
    if not template.strip():
        raise TemplateInvalid("Write a prompt, referencing columns as {{Column Title}}.")
    by_title = {c.title: c for c in columns}
    by_folded = {c.title.casefold(): c for c in columns}
    found: list[Column] = []
    unknown: list[str] = []
    for title in REFERENCE.findall(template):
        column = by_title.get(title) or by_folded.get(title.casefold())
        if column is None:
            unknown.append(title)
        elif column not in found:
            found.append(column)
    if unknown:
        problems = []
        for title in unknown:
            close = difflib.get_close_matches(title, list(by_title), n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(f'{{{{{c}}}}}' for c in close)}?" if close else ""
            problems.append(f"The sheet has no column “{title}”.{hint}")
        raise TemplateInvalid(" ".join(problems))
    if not found:
        raise TemplateInvalid(
            "The prompt references no column: add at least one, like {{"
            + (columns[0].title if columns else "Column Title")
            + "}}, so each row gets its own answer."
        )
    return found


def _cell_text(row: Row, column: Column) -> str:
    return row.display(column.pk)


def prompt_render(*, template: str, columns: Sequence[Column], row: Row) -> str:
    """The template with each reference replaced by the row's displayed value."""
    by_title = {c.title.casefold(): c for c in columns}

    def replace(match: re.Match) -> str:
        column = by_title.get(match.group(1).casefold())
        return _cell_text(row, column) if column is not None else match.group(0)

    return REFERENCE.sub(replace, template)


def row_messages(*, template: str, columns: Sequence[Column], row: Row) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": prompt_render(template=template, columns=columns, row=row)},
    ]


def column_is_numeric(*, column: Column, rows: Sequence[Row]) -> bool:
    """A TEXT_NUMBER column 'holds numbers' when every non-empty sampled value is one."""
    values = [r.value(column.pk) for r in rows if r.value(column.pk) not in (None, "")]
    return bool(values) and all(
        (isinstance(v, int | float) and not isinstance(v, bool)) or _NUMBER.match(str(v))
        for v in values
    )


def output_column(*, column: Column, numeric: bool = False) -> OutputColumn:
    """How the model must answer for `column`: one property named OUTPUT_KEY of the right type."""
    kind = column.type if column.type in ("PICKLIST", "MULTI_PICKLIST", "CHECKBOX", "DATE") else ""
    if kind in ("PICKLIST", "MULTI_PICKLIST") and not column.options:
        kind = ""  # a picklist without options takes any text
    description = {
        "PICKLIST": f"Exactly one of the options of “{column.title}”.",
        "MULTI_PICKLIST": f"The options of “{column.title}” that apply (possibly none).",
        "CHECKBOX": "true or false.",
        "DATE": "A date as YYYY-MM-DD.",
    }.get(kind, f"The text for “{column.title}”, at most {MAX_CELL_CHARS} characters.")
    if not kind and numeric:
        description = f"A number for “{column.title}”."
    return OutputColumn(
        title=OUTPUT_KEY,
        type=kind or "TEXT_NUMBER",
        options=tuple(column.options or ()),
        numeric=numeric and not kind,
        description=description,
    )


class OutputUnfit(InvalidOutputError):
    """A schema-valid answer that still cannot go into the cell (too long)."""


def cell_value(*, column: Column, value: Any) -> Any:
    """The API value to write for the model's (schema-valid) answer."""
    if column.type == "MULTI_PICKLIST":
        # Several options are written as an objectValue list (sheets.services.cell_payload).
        return [str(v) for v in value or ()]
    if isinstance(value, str):
        value = value.strip()
        if len(value) > MAX_CELL_CHARS:
            raise OutputUnfit(
                f"The answer has {len(value):,} characters; a cell holds at most "
                f"{MAX_CELL_CHARS:,}. Ask for a shorter answer in the prompt."
            )
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def row_answer(
    *,
    template: str,
    inputs: Sequence[Column],
    target: Column,
    output: OutputColumn,
    row: Row,
    deployment: str,
    max_tokens: int,
    context: CallContext,
) -> tuple[Any, ChatResult]:
    """Ask the model for one row's value; (API value to write, the call's result).

    The one path both the preview and the runner take. Raises ai.errors' ItemError (this row
    fails alone), RetryableError or RunError; OutputUnfit when the answer cannot go in a cell.
    """
    result = structured_call(
        columns=[output],
        messages=row_messages(template=template, columns=inputs, row=row),
        context=context,
        deployment=deployment,
        max_tokens=max_tokens,
    )
    return cell_value(column=target, value=result.values[OUTPUT_KEY]), result
