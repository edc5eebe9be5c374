"""How the stand-in model picks a tool and fills its arguments.

The product's tool names are not final, so nothing here knows them: the user's last message is
read for an intent (list sheets, find rows, aggregate, change a cell, start a job, describe a
sheet), and each offered tool is scored by how well its name and description fit that intent.
Arguments come from the message (quoted names, "row 12", "to Done", "where Status is Open") and
from what earlier tool results in the conversation revealed (sheet ids and names, column titles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from sandbox.azure_openai import text as T
from sandbox.azure_openai.structured import fill
from sandbox.azure_openai.tokens import content_text

INTENT_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("cancel_job", re.compile(r"\b(cancel|stop|abort|halt|kill)\b.*\bjob\b", re.I)),
    (
        "get_job",
        re.compile(
            r"\b(status|progress|how(?:'s| is| far)|doing|done|finished|going|running)\b.*\bjob\b"
            r"|\bjob\b.*\b(status|progress|doing|done|finished|going|running|stand)\b",
            re.I,
        ),
    ),
    (
        "update_cell",
        re.compile(
            r"\b(change|set|update|mark|replace|edit|rename|correct)\b.*\b(to|as|=)\b|\bcell\b",
            re.I,
        ),
    ),
    (
        "delete_rows",
        re.compile(r"\b(delete|remove|drop)\b.*\brows?\b", re.I),
    ),
    (
        "add_rows",
        re.compile(r"\b(add|append|insert|create)\b.*\b(row|rows|task|item|entry)\b", re.I),
    ),
    (
        "start_job",
        re.compile(
            r"\b(run|start|launch|kick off|create)\b.*\b(job|each row|every row|all rows)\b"
            r"|\bfor (each|every) row\b|\bfill (in )?(the )?\w+ column\b",
            re.I,
        ),
    ),
    (
        "aggregate",
        re.compile(
            r"\bhow many\b|\bcount\b|\bnumber of\b|\bsum\b|\btotal\b|\baverage\b|\bmean\b"
            r"|\bmedian\b|\bminimum\b|\bmaximum\b|\bhighest\b|\blowest\b",
            re.I,
        ),
    ),
    (
        "find_rows",
        re.compile(
            r"\brows?\b.*\b(where|with|whose|that|matching|contain)|\bwhere\b"
            r"|\b(find|search|look up|lookup|filter)\b",
            re.I,
        ),
    ),
    ("list_sheets", re.compile(r"\bsheets\b|\bwhat sheets\b|\blist\b.*\bsheet", re.I)),
    ("get_row", re.compile(r"\brow\s*(?:#|number|no\.?)?\s*\d+\b", re.I)),
    (
        "get_sheet",
        re.compile(r"\bcolumns?\b|\bdescribe\b|\bopen\b.*\bsheet\b|\bsheet\b|\brows?\b", re.I),
    ),
]

# Words a tool's name or description uses for each intent; name words weigh double.
TOOL_WORDS: dict[str, dict[str, float]] = {
    "list_sheets": {"list": 2, "sheet": 1, "sheets": 2, "all": 0.5, "available": 0.5},
    "get_sheet": {"get": 1, "sheet": 1, "describe": 2, "column": 1, "columns": 1, "schema": 1},
    "find_rows": {"find": 2, "search": 2, "query": 2, "filter": 2, "row": 1, "rows": 1.5},
    "aggregate": {"count": 2, "sum": 2, "average": 2, "aggregate": 2, "total": 1, "stat": 1},
    "update_cell": {"update": 2, "change": 2, "set": 2, "propose": 2, "edit": 1, "cell": 2},
    "start_job": {"job": 3, "start": 1, "run": 1, "ai": 1, "fill": 1, "batch": 1},
    "delete_rows": {"delete": 3, "remove": 2, "rows": 1, "row": 1},
    "get_row": {"get": 1, "row": 3, "read": 1, "one": 0.5},
    "add_rows": {"add": 3, "append": 2, "insert": 2, "rows": 1, "row": 1, "new": 1},
    "get_job": {"job": 2, "status": 2, "progress": 2, "get": 1, "read": 1},
    "cancel_job": {"cancel": 3, "job": 2, "stop": 1, "abort": 1},
}
# Words that argue against a tool for an intent (listing sheets is not changing cells).
TOOL_PENALTIES: dict[str, set[str]] = {
    "list_sheets": {"row", "rows", "cell", "update", "job", "find", "search", "count"},
    "get_sheet": {"update", "job", "count", "sum", "list"},
    "find_rows": {"update", "job", "count", "sum", "aggregate", "propose"},
    "aggregate": {"update", "job", "propose"},
    "update_cell": {"job", "list", "find"},
    "start_job": {"cell", "find", "list"},
    "delete_rows": {"list", "query", "job", "update", "add", "get"},
    "get_row": {"rows", "query", "update", "delete", "list", "schema", "add", "job", "sheets"},
    "add_rows": {"list", "query", "job", "update", "delete", "get"},
    "get_job": {"start", "cancel", "sheet", "row", "rows", "update"},
    "cancel_job": {"start", "get", "sheet", "row", "rows"},
}
JOB_MENTION = re.compile(
    r"\bjob\s*(?:#|id\s*|number\s*|no\.?\s*)?(\d+)\b|\bjob_id\W{1,4}(\d+)", re.I
)
OPERATIONS = {
    "count": ("how many", "count", "number of"),
    "sum": ("sum", "total"),
    "average": ("average", "mean", "avg"),
    "min": ("minimum", "lowest", "smallest", "min"),
    "max": ("maximum", "highest", "largest", "max"),
    "median": ("median",),
}


def detect_intent(message: str) -> str | None:
    for intent, pattern in INTENT_PATTERNS:
        if pattern.search(message):
            return intent
    return None


def _tool_words(tool: dict[str, Any]) -> tuple[set[str], set[str]]:
    function = tool.get("function") or {}
    name_words = set(re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", str(function.get("name", "")).strip()))
    name_words = {w.lower() for w in name_words if w}
    desc_words = set(T.words(str(function.get("description", ""))))
    return name_words, desc_words


def tool_score(tool: dict[str, Any], intent: str) -> float:
    name_words, desc_words = _tool_words(tool)
    score = 0.0
    for word, weight in TOOL_WORDS[intent].items():
        if word in name_words:
            score += 2 * weight
        elif word in desc_words:
            score += weight
    score -= 1.5 * len(TOOL_PENALTIES[intent] & name_words)
    return score


def pick_tool(tools: list[dict[str, Any]], intent: str | None) -> dict[str, Any] | None:
    if not intent or not tools:
        return None
    scored = [(tool_score(tool, intent), -i, tool) for i, tool in enumerate(tools)]
    best = max(scored, key=lambda item: (item[0], item[1]))
    return best[2] if best[0] >= 2 else None


def closest_tool(tools: list[dict[str, Any]], message: str) -> dict[str, Any]:
    """For tool_choice "required" with no clear intent: the tool sharing most words."""
    said = T.content_words(message)

    def overlap(tool: dict[str, Any]) -> int:
        name_words, desc_words = _tool_words(tool)
        return len(said & {T.stem(w) for w in name_words | desc_words})

    return max(tools, key=lambda tool: (overlap(tool), -tools.index(tool)))


@dataclass
class Known:
    """What earlier tool results showed: sheets (name -> id), column titles, row ids."""

    sheets: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)
    options: dict[str, list[Any]] = field(default_factory=dict)  # column title -> dropdown
    jobs: list[int] = field(default_factory=list)  # job numbers named so far, oldest first

    def absorb(self, data: Any, parent_key: str = "") -> None:
        if isinstance(data, list):
            for item in data:
                self.absorb(item, parent_key)
        elif isinstance(data, dict):
            label = data.get("name") or data.get("title")
            key = parent_key.lower()
            if "column" in key:
                if isinstance(label, str) and label not in self.columns:
                    self.columns.append(label)
                if isinstance(label, str) and isinstance(data.get("options"), list):
                    self.options[label] = data["options"]
            elif "row" in key:
                if "id" in data:
                    self.rows.append(data["id"])
            elif isinstance(label, str) and ("id" in data or "sheet" in key):
                self.sheets.setdefault(label, data.get("id"))
            for child_key, child in data.items():
                if child_key == "columns" and isinstance(child, list):
                    for col in child:
                        if isinstance(col, str) and col not in self.columns:
                            self.columns.append(col)
                if isinstance(child, (list, dict)):
                    self.absorb(child, child_key)


def jobs_mentioned(messages: list[dict[str, Any]]) -> list[int]:
    """Job numbers the conversation named ("job 12", "Job #12", `"job_id": 12`), oldest first."""
    found: list[int] = []
    for message in messages:
        for match in JOB_MENTION.finditer(content_text(message.get("content"))):
            found.append(int(match.group(1) or match.group(2)))
    return found


def known_from(messages: list[dict[str, Any]]) -> Known:
    """What tool results, and JSON quoted in system messages (a sheet's schema), revealed."""
    known = Known()
    for message in messages:
        role = message.get("role")
        text = content_text(message.get("content"))
        if role in ("system", "developer") and "{" in text:
            text = text[text.index("{") : text.rindex("}") + 1]
        elif role != "tool":
            continue
        try:
            known.absorb(orjson.loads(text))
        except orjson.JSONDecodeError:
            continue
    known.jobs = jobs_mentioned(messages)
    return known


class ToolArguments:
    """The `Guesser` for tool calls: reads the user's message and what tools revealed."""

    def __init__(self, message: str, intent: str | None, known: Known) -> None:
        self.message = message
        self.intent = intent
        self.known = known
        self.quotes = T.quoted(message)
        self.sheet_name = self._sheet_name()
        self.column = self._column()
        self.value = self._value()
        # Names the message gave no value for; a required one may call for another tool first.
        self.unanswered: set[str] = set()

    # -- reading the message -------------------------------------------------------------

    def _mentioned(self, names: list[str]) -> str | None:
        lowered = self.message.lower()
        hits = [n for n in names if n and re.search(rf"\b{re.escape(n.lower())}\b", lowered)]
        return max(hits, key=len) if hits else None

    def _sheet_name(self) -> str | None:
        for match in re.finditer(
            r"\b(?:in|from|on|of|over|for)\s+(?:the\s+)?(?:sheet\s+)?[\"\u201c'\u2018]([^\"\u201d'\u2019]+)",
            self.message,
        ):
            return match.group(1)
        for match in re.finditer(
            r"sheet\s+(?:called|named)?\s*[\"\u201c'\u2018]([^\"\u201d'\u2019]+)", self.message
        ):
            return match.group(1)
        for match in re.finditer(
            r"[\"\u201c'\u2018]([^\"\u201d'\u2019]+)[\"\u201d'\u2019]\s+sheet", self.message
        ):
            return match.group(1)
        known = self._mentioned(list(self.known.sheets))
        if known:
            return known
        match = re.search(
            r"\b(?:in|from|on|of|over|for)\s+(?:the\s+)?((?:[A-Z0-9][\w&-]*\s?){1,4})\s*sheet\b",
            self.message,
        )
        if match:
            return match.group(1).strip()
        match = re.search(
            r"\bsheet\s+(?:called\s+|named\s+)?((?:[A-Z0-9][\w&-]*\s?){1,4})", self.message
        )
        if match:
            return match.group(1).strip()
        if self.intent in ("list_sheets",):
            return None
        return self.quotes[0] if len(self.quotes) >= 2 else None

    def _column(self) -> str | None:
        known = self._mentioned(self.known.columns)
        if known:
            return known
        patterns = [
            r"(?:column|field)\s+[\"\u201c'\u2018]([^\"\u201d'\u2019]+)",
            r"[\"\u201c'\u2018]([^\"\u201d'\u2019]+)[\"\u201d'\u2019]\s+(?:column|field)",
            r"\b(?:the\s+)?(\w+(?:\s\w+)?)\s+(?:column|field)\b",
            r"\b(?:sum|total|average|mean|median|minimum|maximum|avg)\s+(?:of\s+)?(?:the\s+)?(\w+)",
            r"\bwhere\s+(?:the\s+)?(\w+)\s+(?:is|=|==|equals|contains|matches|has)\b",
            r"\b(?:set|change|update|mark)\s+(?:the\s+)?(\w+)\s+(?:of|for|on|in)\b",
            r"\bby\s+(\w+)",
            r"\bwith\s+(\w+)\s+(?:=|of|is)\b",
        ]
        for pattern in patterns:
            match = re.search(pattern, self.message, re.I)
            if match and match.group(1).lower() not in T.STOPWORDS | {"row", "rows", "sheet"}:
                return match.group(1)
        return None

    def _value(self) -> str | None:
        patterns = [
            r"\bto\s+[\"\u201c'\u2018]([^\"\u201d'\u2019]+)",
            r"\bto\s+([^\s,.;!?]+(?:\s+[A-Z][\w-]*)*)",
            r"\b(?:is|=|==|equals|matches|contains|containing)\s+[\"\u201c'\u2018]([^\"\u201d'\u2019]+)",
            r"\b(?:is|=|==|equals|matches|contains|containing)\s+([^\s,.;!?]+)",
            r"\bas\s+([^\s,.;!?]+)",
        ]
        if self.intent != "update_cell":
            patterns = patterns[2:]
        for pattern in patterns:
            match = re.search(pattern, self.message, re.I)
            if match:
                return match.group(1).strip()
        leftovers = [q for q in self.quotes if q not in (self.sheet_name, self.column)]
        return leftovers[0] if leftovers else None

    def _row(self) -> int | None:
        match = re.search(r"\brow\s*(?:#|id|number|no\.?)?\s*(\d+)", self.message, re.I)
        if match:
            return int(match.group(1))
        return None

    def _operation(self, options: list[Any] | None = None) -> Any:
        lowered = self.message.lower()
        for op, cues in OPERATIONS.items():
            if any(re.search(rf"\b{re.escape(c)}\b", lowered) for c in cues):
                if options is None:
                    return op
                for option in options:
                    if str(option).lower() in (op, *cues) or str(option).lower().startswith(op[:3]):
                        return option
        return None

    # -- the Guesser protocol ------------------------------------------------------------

    def guess(self, name: str, description: str, kind: str, schema: dict[str, Any]) -> Any:
        value = self._guess(name, description, kind, schema)
        if value is None:
            self.unanswered.add(name)
        return value

    def _guess(self, name: str, description: str, kind: str, schema: dict[str, Any]) -> Any:
        key = f"{name} {description}".lower()
        simple = name.lower()
        if kind == "enum":
            options = schema["enum"]
            op = self._operation(options)
            if op is not None:
                return op
            lowered = self.message.lower()
            for option in options:
                if str(option).lower() in lowered:
                    return option
            return None
        if kind == "array":
            items = schema.get("items") or {}
            if "column" in simple:
                mentioned = [c for c in self.known.columns if c.lower() in self.message.lower()]
                return mentioned or ([self.column] if self.column else None)
            if "row" in simple and items.get("type") in ("integer", "number"):
                row = self._row()
                return [row] if row is not None else (self.known.rows[:1] or None)
            return None
        if "job" in simple and kind in ("integer", "number", "string"):
            # The job the message names, else the last one the conversation mentioned.
            named = JOB_MENTION.search(self.message)
            if named:
                return int(named.group(1) or named.group(2))
            return self.known.jobs[-1] if self.known.jobs else None
        if "sheet" in simple or (simple in ("id", "name") and "sheet" in key):
            wants_id = kind in ("integer", "number") or simple.endswith("id")
            if wants_id:
                if self.sheet_name and self.sheet_name in self.known.sheets:
                    return self.known.sheets[self.sheet_name]
                ids = [n for n in T.numbers(self.message) if n >= 1000]
                if ids:
                    return int(ids[0]) if kind != "string" else str(int(ids[0]))
                if len(self.known.sheets) == 1:
                    return next(iter(self.known.sheets.values()))
                return None if kind != "string" else self.sheet_name
            return self.sheet_name
        if "row" in simple:
            row = self._row()
            if row is None and self.known.rows:
                row = self.known.rows[0]
            return row
        if any(k in simple for k in ("column", "field", "group_by", "groupby", "target", "by")):
            return self.column
        if any(k in simple for k in ("operation", "op", "function", "agg", "metric", "aggregat")):
            return self._operation()
        if any(k in simple for k in ("prompt", "instruction", "template", "task")):
            match = re.search(
                r"prompt\s*[:=]?\s*[\"\u201c'\u2018]([^\"\u201d'\u2019]+)", self.message, re.I
            )
            if match:
                return match.group(1)
            after_colon = self.message.split(":", 1)
            return after_colon[1].strip() if len(after_colon) == 2 else self.message.strip()
        if any(k in simple for k in ("limit", "max", "top", "count", "size", "page")):
            match = re.search(r"\b(?:first|top|limit|last)\s+(\d+)|\b(\d+)\s+rows\b", self.message)
            if match:
                return int(match.group(1) or match.group(2))
            return None
        if any(
            k in simple
            for k in ("value", "query", "search", "term", "text", "match", "keyword", "equals")
        ):
            return self.value
        if any(k in simple for k in ("reason", "explanation", "rationale", "comment", "note")):
            return f"Requested: {T.first_sentence(self.message, 16)}"
        if kind == "boolean":
            return None
        return None

    def missing_job(self, tool: dict[str, Any]) -> bool:
        """Whether the tool needs a job the user has not said (nor the conversation named)."""
        schema = (tool.get("function") or {}).get("parameters") or {}
        required = set(schema.get("required") or [])
        return any("job" in name.lower() for name in required & self.unanswered)

    def missing_sheet(self, tool: dict[str, Any]) -> bool:
        """Whether the tool needs a sheet the conversation has not identified yet."""
        schema = (tool.get("function") or {}).get("parameters") or {}
        required = set(schema.get("required") or [])
        return any("sheet" in name.lower() for name in required & self.unanswered)

    def arguments(self, tool: dict[str, Any]) -> str:
        schema = (tool.get("function") or {}).get("parameters") or {
            "type": "object",
            "properties": {},
        }
        strict = bool((tool.get("function") or {}).get("strict"))
        args = fill(schema, self, all_properties=strict)
        if not isinstance(args, dict):
            args = {}
        return orjson.dumps(args).decode()
