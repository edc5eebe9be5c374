"""Answers written from tool results, as a model would: tables for rows and groups, a sentence
for a single figure, a list for sheets (`describe`), and a plainer summary of other shapes."""

from __future__ import annotations

from typing import Any

import orjson

from sandbox.azure_openai import text as T
from sandbox.azure_openai.tokens import content_text

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
    if "job_id" in data and isinstance(data.get("status"), str) and "rows_total" in data:
        return _job_status(data)
    if isinstance(data.get("sheets"), list):
        sheets = [s for s in data["sheets"] if isinstance(s, dict)]
        if not sheets:
            return "No sheets are shared with you."
        lines = [f"- {s.get('name')} ({s.get('row_count', '?')} rows)" for s in sheets[:50]]
        return f"You have {len(sheets)} sheet(s):\n\n" + "\n".join(lines)
    return None


def _job_status(data: dict[str, Any]) -> str:
    name = f" “{data['name']}”" if data.get("name") else ""
    on = f" on {data['sheet']}" if data.get("sheet") else ""
    text = (
        f"Job #{data['job_id']}{name}{on} is {data['status']}: "
        f"{data.get('rows_done', 0)} of {data['rows_total']} rows done"
    )
    extra = [
        f"{data[key]} {word}"
        for key, word in (("rows_failed", "failed"), ("rows_skipped", "skipped"))
        if data.get(key)
    ]
    if extra:
        text += f" ({', '.join(extra)})"
    if data.get("reason"):
        text += f". Reason: {data['reason']}"
    try:
        cost = float(data.get("cost") or 0)
    except (TypeError, ValueError):
        cost = 0.0
    if cost > 0:
        text += f". Cost so far: ${cost:.4f}"
    return text + "."


def summarise_tool_results(messages: list[dict[str, Any]]) -> str:
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(content_text(message.get("content")))
    parts = [p for p in (_describe(raw) for raw in reversed(results)) if p]
    return ("\n\n" if any("\n" in p for p in parts) else " ").join(parts)


def _label(item: Any) -> str:
    if isinstance(item, dict):
        for key in ("name", "title"):
            if isinstance(item.get(key), str):
                return item[key]
        cells = item.get("cells") or item.get("values")
        source = cells if isinstance(cells, dict) else item
        pairs = [f"{k}: {v}" for k, v in source.items() if not isinstance(v, (dict, list))][:3]
        return ", ".join(pairs)
    return str(item)


def _describe(raw: str) -> str:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return f"Here is what I found: {T.first_sentence(raw, 40)}" if raw.strip() else ""
    if isinstance(data, dict) and data.get("error"):
        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else error
        return f"The tool reported a problem: {message}"
    written = describe(data)
    if written is not None:
        return written
    items = None
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        for key in ("rows", "sheets", "results", "items", "data", "matches", "columns"):
            if isinstance(data.get(key), list):
                items = data[key]
                break
    if items is not None:
        total = data.get("total", data.get("count")) if isinstance(data, dict) else None
        total = total if isinstance(total, int) else len(items)
        noun = "result" if total == 1 else "results"
        if not items:
            return "I found no matching results."
        shown = "; ".join(_label(i) for i in items[:3])
        more = f" (and {total - 3} more)" if total > 3 else ""
        return f"I found {total} {noun}: {shown}{more}."
    if isinstance(data, dict):
        numeric = {k: v for k, v in data.items() if isinstance(v, (int, float)) and k != "id"}
        bits = []
        for key in ("count", "sum", "total", "average", "mean", "avg", "min", "max", "value"):
            if key in numeric:
                value = numeric[key]
                shown = (
                    f"{value:,.2f}".rstrip("0").rstrip(".")
                    if isinstance(value, float)
                    else (f"{value:,}")
                )
                bits.append(f"the {key} is {shown}")
        column = data.get("column") or data.get("column_title")
        if bits:
            prefix = f"For {column}, " if isinstance(column, str) else ""
            text = prefix + ", ".join(bits)
            return text[0].upper() + text[1:] + "."
        if any(k in data for k in ("proposal", "proposed", "diff", "change", "pending")):
            return "I've prepared that change; review it and press Apply to make it."
        if "job" in data or "job_id" in data:
            job = data.get("job_id") or (data.get("job") or {}).get("id")
            return f"I started the job{f' #{job}' if job else ''}; you can follow its progress."
        pairs = [f"{k}: {v}" for k, v in data.items() if not isinstance(v, (dict, list))][:5]
        return f"Here is what I found: {', '.join(pairs)}." if pairs else "Done."
    return f"The result is {data}."
