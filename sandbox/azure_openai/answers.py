"""Answers written from sheet-shaped tool results, as a model would: tables for rows and groups,
a sentence for a single figure, a list for sheets. `describe` returns None for other shapes."""

from __future__ import annotations

from typing import Any

MAX_TABLE_ROWS = 20
HIDDEN_COLUMNS = {"row_id"}
OPERATION_WORDS = {
    "count": "count",
    "sum": "total",
    "avg": "average",
    "min": "minimum",
    "max": "maximum",
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def _filters(data: dict[str, Any]) -> str:
    filters = data.get("filters") or []
    if not filters:
        return ""
    said = " and ".join(f"{f.get('column')} {f.get('op')} {f.get('value')}" for f in filters)
    return f" where {said}"


def describe(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    columns, rows = data.get("columns"), data.get("rows")
    if (
        isinstance(columns, list)
        and isinstance(rows, list)
        and all(isinstance(r, list) for r in rows)
    ):
        total = data.get("total") if isinstance(data.get("total"), int) else len(rows)
        if not rows:
            return "No rows match."
        keep = [i for i, c in enumerate(columns) if c not in HIDDEN_COLUMNS]
        header = [columns[i] for i in keep]
        shown = [[row[i] if i < len(row) else "" for i in keep] for row in rows[:MAX_TABLE_ROWS]]
        noun = "row matches" if total == 1 else "rows match"
        where = f" in {data['sheet']}" if data.get("sheet") else ""
        text = f"{total} {noun}{where}:\n\n{_table(header, shown)}"
        if total > len(shown):
            text += f"\n\nShowing the first {len(shown)}."
        return text
    if isinstance(data.get("groups"), list) and data.get("operation"):
        word = OPERATION_WORDS.get(data["operation"], data["operation"])
        of = f" of {data['column']}" if data.get("column") else ""
        header = [data.get("group_by") or "group", f"{word}{of}", "rows"]
        body = [[g.get("group"), g.get("value"), g.get("rows")] for g in data["groups"]]
        return f"The {word}{of} by {header[0]}{_filters(data)}:\n\n{_table(header, body)}"
    if data.get("operation") and "value" in data:
        word = OPERATION_WORDS.get(data["operation"], data["operation"])
        value = _cell(data["value"]) or "nothing (no matching values)"
        if data["operation"] == "count" and not data.get("column"):
            noun = "row" if data["value"] == 1 else "rows"
            return f"{value} {noun}{_filters(data)}."
        of = f" of {data['column']}" if data.get("column") else ""
        return f"The {word}{of}{_filters(data)} is {value}."
    if isinstance(columns, list) and columns and all(isinstance(c, dict) for c in columns):
        described = []
        for column in columns:
            extra = f": {', '.join(map(str, column['options']))}" if column.get("options") else ""
            described.append(
                f"- {column.get('title')} ({str(column.get('type', '')).lower()}{extra})"
            )
        rows_note = f" has {data['row_count']} rows and" if "row_count" in data else ""
        return f"{data.get('name', 'The sheet')}{rows_note} these columns:\n\n" + "\n".join(
            described
        )
    if isinstance(data.get("sheets"), list):
        sheets = [s for s in data["sheets"] if isinstance(s, dict)]
        if not sheets:
            return "No sheets are shared with you."
        lines = [f"- {s.get('name')} ({s.get('row_count', '?')} rows)" for s in sheets[:50]]
        return f"You have {len(sheets)} sheet(s):\n\n" + "\n".join(lines)
    return None
