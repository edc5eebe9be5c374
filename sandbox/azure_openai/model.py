"""The deterministic stand-in model: same request, same reply; plausible, never random noise.

`respond()` decides between a tool call, a structured (JSON) answer and plain text:

- tools offered (and tool_choice allows): the last user message's intent picks a tool
  (see tools.py); after tool results it answers from them, unless the intent's own tool has not
  run yet this turn (list sheets first, then find rows in the one named).
- a request to summarise a conversation (a transcript of "User:"/"Assistant:" lines): a digest
  of what was asked and answered (digest.py), extending a summary given with it.
- row prompts: an instruction (system message, or the line/clause before the data) says the
  task: summarise, sentiment, classify into options, yes/no, a score, keywords; the rest is the
  row's text, which the answer is computed from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from sandbox.azure_openai import answers
from sandbox.azure_openai import text as T
from sandbox.azure_openai.arguments import SheetArguments
from sandbox.azure_openai.digest import conversation_digest
from sandbox.azure_openai.structured import fill
from sandbox.azure_openai.tokens import content_text
from sandbox.azure_openai.tools import (
    Known,
    closest_tool,
    detect_intent,
    known_from,
    pick_tool,
)

TASK_CUES = re.compile(
    r"summar|sentiment|classif|categor|label|score|rate\b|rating|yes or no|yes/no|answer|respond"
    r"|return|extract|keywords?|tags?|reply|one of|choose|pick|decide|determine|is this|does this"
    r"|do(es)? the|json|translate|rewrite|output|analy[sz]e|assess|evaluate|triage|review",
    re.I,
)


WHICH_JOB = (
    "Which job do you mean? Tell me its number, e.g. “how is job 12 doing?” "
    "(the Jobs page lists yours)."
)


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RowTask:
    """What a row prompt asks (`kind`) and about which text (`data`)."""

    kind: str
    instruction: str
    data: str
    options: list[str]
    salt: str

    @classmethod
    def read(cls, messages: list[dict[str, Any]], salt: str) -> RowTask:
        system = " ".join(
            content_text(m.get("content"))
            for m in messages
            if m.get("role") in ("system", "developer")
        )
        user = next(
            (content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        instruction_parts = [system] if system else []
        data_parts: list[str] = []
        lines = [line for line in user.splitlines() if line.strip()]
        if len(lines) > 1:
            for line in lines:
                is_kv = re.match(r"^[^:]{1,40}:\s+\S", line) and not TASK_CUES.search(
                    line.split(":", 1)[0]
                )
                if (TASK_CUES.search(line) and not is_kv) or line.rstrip().endswith("?"):
                    head, sep, tail = line.partition(":")
                    lists_options = bool(T.parse_options(line))
                    if sep and tail.strip() and len(tail.split()) > 3 and not lists_options:
                        instruction_parts.append(head)
                        data_parts.append(tail)
                    else:
                        instruction_parts.append(line)
                else:
                    data_parts.append(line)
        elif lines:
            line = lines[0]
            head, sep, tail = line.partition(":")
            short_head = len(head.split()) <= 6 and len(tail.split()) > len(head.split())
            if sep and tail.strip() and (TASK_CUES.search(head) or short_head):
                instruction_parts.append(head)
                data_parts.append(tail.strip())
            elif TASK_CUES.search(line) or line.rstrip().endswith("?"):
                instruction_parts.append(line)
                # A question about quoted text: the quote is the data.
                data_parts.extend(T.quoted(line))
            else:
                data_parts.append(line)
        instruction = "\n".join(p for p in instruction_parts if p.strip())
        data = "\n".join(data_parts).strip() or user
        options = T.parse_options(instruction)
        return cls(cls._kind(instruction, options), instruction, data, options, salt)

    @staticmethod
    def _kind(instruction: str, options: list[str]) -> str:
        lowered = instruction.lower()
        if "sentiment" in lowered and not options:
            return "sentiment"
        if options:
            return "classify"
        if "summar" in lowered or "tl;dr" in lowered or "in one sentence" in lowered:
            return "summary"
        if re.search(r"\bscore\b|\brate\b|\brating\b|\bnumber\b|\bhow (much|likely)\b", lowered):
            return "score"
        if "keyword" in lowered or "tags" in lowered:
            return "keywords"
        if re.search(r"yes or no|yes/no|\btrue or false\b", lowered) or re.match(
            r"^\s*(is|are|does|do|did|was|were|has|have|can|should|will)\b",
            lowered.splitlines()[-1] if lowered.strip() else "",
        ):
            return "yes_no"
        if "categor" in lowered or "classif" in lowered:
            return "category"
        return "sentence"

    def score_range(self) -> tuple[float, float]:
        return T.number_range(self.instruction) or (1.0, 10.0)

    def answer(self) -> str:
        if self.kind == "summary":
            return T.summarize(self.data)
        if self.kind == "sentiment":
            return T.sentiment(self.data)
        if self.kind == "classify":
            return str(T.best_option(self.options, self.data, self.salt))
        if self.kind == "score":
            low, high = self.score_range()
            value = T.scaled_score(self.data, low, high, self.salt, T.inverted(self.instruction))
            return (
                str(round(value))
                if float(low).is_integer() and float(high).is_integer()
                else (f"{value:.2f}")
            )
        if self.kind == "keywords":
            return ", ".join(T.keywords(self.data)) or "none"
        if self.kind == "yes_no":
            return "Yes" if T.yes_no(self.instruction, self.data) else "No"
        if self.kind == "category":
            found = T.keywords(self.data, 1)
            return found[0].title() if found else "General"
        return self.sentence()

    def sentence(self) -> str:
        words = T.words(self.data)
        if not words:
            return "Hello! Ask me about your sheets, or give me a row to work on."
        if len(words) <= 4 and words[0] in ("hi", "hello", "hey", "thanks", "thank"):
            return "Hello! I can list your sheets, find rows, total columns and propose edits."
        gist = T.summarize(self.data, 16)
        focus = ", ".join(T.keywords(self.data, 3))
        openers = [
            f"In short: {gist}",
            f"Key point: {gist}",
            f"Noted. {gist}",
        ]
        sentence = openers[T.stable_int(self.data, self.salt) % len(openers)]
        return f"{sentence} (Topics: {focus}.)" if focus else sentence


class RowGuesser:
    """The `Guesser` for structured outputs: property names say what each value should be."""

    def __init__(self, task: RowTask) -> None:
        self.task = task

    def guess(self, name: str, description: str, kind: str, schema: dict[str, Any]) -> Any:
        task = self.task
        key = f"{name} {description}".lower()
        data = task.data
        if kind == "enum":
            options = schema["enum"]
            if all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options):
                value = T.scaled_score(
                    data, min(options), max(options), task.salt + name, T.inverted(key)
                )
                return min(options, key=lambda o: abs(o - value))
            if "sentiment" in key or "tone" in key:
                mood = T.sentiment(data).lower()
                for option in options:
                    if str(option).lower().startswith(mood[:3]):
                        return option
            return T.best_option(options, data, task.salt + name)
        if kind == "boolean":
            question = f"{name.replace('_', ' ')} {description}"
            return T.yes_no(question, data)
        if kind in ("integer", "number"):
            if "minimum" in schema and "maximum" in schema:
                low, high = float(schema["minimum"]), float(schema["maximum"])
            elif "confidence" in key or "probability" in key:
                return round(0.7 + (T.stable_int(data, name) % 26) / 100, 2)
            else:
                low, high = T.number_range(description) or task.score_range()
            return T.scaled_score(data, low, high, task.salt + name, T.inverted(key))
        if kind == "array":
            items = schema.get("items") or {}
            if "enum" in items:
                return [T.best_option(items["enum"], data, task.salt + name)]
            if items.get("type", "string") == "string":
                if any(k in key for k in ("keyword", "tag", "topic", "theme", "entit")):
                    return T.keywords(data)
                return [task.answer()]
            return None
        if kind != "string":
            return None
        if "summar" in key or "tldr" in key or "gist" in key:
            return T.summarize(data)
        if "sentiment" in key or "tone" in key:
            return T.sentiment(data)
        if any(k in key for k in ("reason", "explanation", "rationale", "justification", "why")):
            mood = T.sentiment(data).lower()
            focus = ", ".join(T.keywords(data, 3)) or "the text"
            return f"The text reads {mood} and centres on {focus}."
        if any(k in key for k in ("category", "label", "class", "topic", "type")):
            if task.options:
                return str(T.best_option(task.options, data, task.salt + name))
            found = T.keywords(data, 1)
            return found[0].title() if found else "General"
        if "language" in key:
            return "English"
        if any(k in key for k in ("title", "headline", "subject")):
            return " ".join(T.summarize(data, 6).rstrip("…").split()[:6])
        return task.answer()


def _json_keys(instruction: str) -> list[str]:
    """Keys an instruction asks a JSON object to carry ('with keys "summary" and "score"')."""
    found = [q for q in T.quoted(instruction) if re.fullmatch(r"[A-Za-z_][\w]{0,40}", q)]
    if not found:
        match = re.search(r"\b(?:keys?|fields?|properties)\s*:?\s*([\w ,]+)", instruction, re.I)
        if match:
            found = [w for w in re.split(r"[\s,]+(?:and\s+)?", match.group(1)) if w and w != "and"]
    return list(dict.fromkeys(found))


def _forced_tool(tool_choice: Any, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        return next((t for t in tools if (t.get("function") or {}).get("name") == wanted), None)
    return None


def _calls_since_last_user(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, arguments) of every tool call made since the user last spoke."""
    made: list[tuple[str, str]] = []
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            made.append((str(function.get("name")), str(function.get("arguments"))))
    return made


def clauses(message: str) -> list[str]:
    """A request asking several things ("how many are Blocked and how many are Done?") as its
    parts; each may need its own tool call."""
    parts = re.split(
        r"\s*(?:;|\?\s+(?=\w)|\band also\b|\band\s+(?=(?:how many|what|which|show|list|count|"
        r"set|change|delete)\b))\s*",
        message,
        flags=re.I,
    )
    parts = [p for p in parts if p and p.strip()]
    return parts or [message]


def _plan_calls(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    tool_choice: Any,
    last_user: str,
    parallel: bool,
) -> list[tuple[dict[str, Any], str]]:
    """The tool calls to make now, with their arguments: one per part of the request that still
    needs one (all at once when parallel calls are allowed, else the first)."""
    made = _calls_since_last_user(messages)
    made_names = [name for name, _ in made]
    known = known_from(messages)
    forced = _forced_tool(tool_choice, tools)
    lister = pick_tool(tools, "list_sheets")
    describer = pick_tool(tools, "get_sheet")
    planned: list[tuple[dict[str, Any], str]] = []
    wanted: dict[str, int] = {}
    for part in clauses(last_user):
        intent = detect_intent(part) or detect_intent(last_user)
        chosen = forced or pick_tool(tools, intent)
        if chosen is None and tool_choice == "required":
            chosen = closest_tool(tools, last_user)
        if chosen is None:
            continue
        name = (chosen.get("function") or {}).get("name", "")
        wanted[name] = wanted.get(name, 0) + 1
        if forced is None and made_names.count(name) >= wanted[name]:
            continue  # this part was answered already
        reader = SheetArguments(part, intent, known, known.options)
        if reader.sheet_name is None:
            reader.sheet_name = SheetArguments(last_user, intent, known, known.options).sheet_name
        args = reader.arguments(chosen)
        if forced is None and reader.missing_job(chosen):
            continue  # which job? answered in words (see respond)
        if (
            forced is None
            and lister is not None
            and lister is not chosen
            and reader.missing_sheet(chosen)
            and (lister.get("function") or {}).get("name") not in made_names
        ):
            # As a real model would: look the sheet up before acting on it.
            chosen = lister
            args = SheetArguments(last_user, "list_sheets", Known(), {}).arguments(lister)
        elif (
            forced is None
            and intent in ("aggregate", "find_rows")
            and describer is not None
            and not known.options
            and reader.conditions() is None
            and reader.names_a_value()
            and not reader.missing_sheet(chosen)
            and (describer.get("function") or {}).get("name") not in made_names
        ):
            # "How many are Blocked?" before any schema was seen: which column has that option?
            chosen = describer
            args = SheetArguments(part, "get_sheet", known, known.options).arguments(describer)
        call = (chosen, args)
        if (name, args) in made or any(c[0] is chosen and c[1] == args for c in planned):
            continue
        planned.append(call)
        if not parallel or chosen in (lister, describer):
            break
    return planned


def respond(
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    response_format: dict[str, Any] | None = None,
    salt: str,
    parallel_tool_calls: bool = True,
) -> Reply:
    tools = [t for t in tools or [] if t.get("type", "function") == "function"]
    last_user = next(
        (content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    after_tools = bool(messages) and messages[-1].get("role") == "tool"

    if tools and tool_choice != "none":
        planned = _plan_calls(messages, tools, tool_choice, last_user, parallel_tool_calls)
        if planned:
            return Reply(
                tool_calls=[
                    {
                        "id": "call_" + f"{T.stable_int(salt, 'call', i):016x}"[:24],
                        "type": "function",
                        "function": {
                            "name": (chosen.get("function") or {}).get("name", ""),
                            "arguments": args,
                        },
                    }
                    for i, (chosen, args) in enumerate(planned)
                ]
            )

    digest = conversation_digest(messages) if not tools else None
    if digest is not None:
        return Reply(content=digest)
    if tools and not after_tools and detect_intent(last_user) in ("get_job", "cancel_job"):
        return Reply(content=WHICH_JOB)
    task = RowTask.read(messages, salt)
    if after_tools and not response_format_is_json(response_format):
        return Reply(content=answers.summarise_tool_results(messages) or "Done.")
    kind = (response_format or {}).get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        value = fill(schema, RowGuesser(task))
        return Reply(content=orjson.dumps(value).decode())
    if kind == "json_object":
        guesser = RowGuesser(task)
        keys = _json_keys(task.instruction) or [_default_key(task.kind)]
        value = {key: guesser.guess(key, "", "string", {"type": "string"}) for key in keys}
        return Reply(content=orjson.dumps(value).decode())
    return Reply(content=task.answer())


def response_format_is_json(response_format: dict[str, Any] | None) -> bool:
    return (response_format or {}).get("type") in ("json_schema", "json_object")


def _default_key(kind: str) -> str:
    return {
        "summary": "summary",
        "sentiment": "sentiment",
        "classify": "category",
        "category": "category",
        "score": "score",
        "keywords": "keywords",
        "yes_no": "answer",
    }.get(kind, "answer")
