"""Token counting the way Azure OpenAI bills it, offline.

`bpe-openai` ships the encodings (tiktoken would download them). Chat overhead follows OpenAI's
published recipe: about 3 tokens per message plus 3 priming the reply. Tool definitions are billed
as the TypeScript-like namespace the service renders them into, so we render and count that.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import bpe_openai
import orjson

# Base model -> encoding. bpe-openai's own model table is old, so we keep ours.
ENCODING_BY_MODEL = {
    "gpt-4o": "o200k_base",
    "gpt-4o-mini": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.1-mini": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
}
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# bpe-openai refuses inputs of a million characters or more; longer text is counted in slices.
_SLICE = 500_000


@cache
def encoding_for(model: str) -> Any:
    return bpe_openai.get_encoding(ENCODING_BY_MODEL.get(model, "o200k_base"))


def count(text: str, model: str) -> int:
    if not text:
        return 0
    enc = encoding_for(model)
    return sum(len(enc.encode(text[i : i + _SLICE])) for i in range(0, len(text), _SLICE))


def encode(text: str, model: str) -> list[int]:
    enc = encoding_for(model)
    out: list[int] = []
    for i in range(0, len(text), _SLICE):
        out.extend(enc.encode(text[i : i + _SLICE]))
    return out


def decode(tokens: list[int], model: str) -> str:
    return encoding_for(model).decode(tokens)


def split_tokens(text: str, model: str) -> list[str]:
    """The text as the pieces a streaming reply would send, one token each.

    A multi-byte character split across tokens would decode to replacement characters, so such
    tokens are merged with the next until they decode cleanly.
    """
    enc = encoding_for(model)
    pieces: list[str] = []
    pending: list[int] = []
    for token in encode(text, model):
        pending.append(token)
        raw = b"".join(enc.decode_single_token_bytes(t) for t in pending)
        try:
            pieces.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        pending = []
    if pending:
        pieces.append(enc.decode(pending))
    return pieces


def truncate(text: str, limit: int, model: str) -> str:
    tokens = encode(text, model)
    if len(tokens) <= limit:
        return text
    return encoding_for(model).decode(tokens[:limit]).rstrip("\ufffd")


def content_text(content: Any) -> str:
    """A message's text whether content is a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", None)
        )
    return str(content)


def count_messages(messages: list[dict[str, Any]], model: str) -> int:
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += count(str(message.get("role", "")), model)
        total += count(content_text(message.get("content")), model)
        if message.get("name"):
            total += TOKENS_PER_NAME + count(str(message["name"]), model)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            total += TOKENS_PER_MESSAGE
            total += count(str(function.get("name", "")), model)
            total += count(str(function.get("arguments", "")), model)
    return total


def _ts_type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(orjson.dumps(v).decode() for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(_ts_type({**schema, "type": k}) for k in kind)
    if kind == "array":
        return f"{_ts_type(schema.get('items') or {})}[]"
    if kind == "object" and schema.get("properties"):
        return "{\n" + _ts_properties(schema) + "}"
    return {"integer": "number", "object": "object"}.get(kind, kind)


def _ts_properties(schema: dict[str, Any]) -> str:
    required = set(schema.get("required") or [])
    lines = []
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("description"):
            lines.append(f"// {prop['description']}\n")
        optional = "" if name in required else "?"
        lines.append(f"{name}{optional}: {_ts_type(prop)},\n")
    return "".join(lines)


def render_tools(tools: list[dict[str, Any]]) -> str:
    """Tool definitions as the namespace text the model actually sees."""
    parts = ["# Tools\n\n## functions\n\nnamespace functions {\n\n"]
    for tool in tools:
        function = tool.get("function") or {}
        if function.get("description"):
            parts.append(f"// {function['description']}\n")
        params = function.get("parameters") or {}
        if params.get("properties"):
            parts.append(
                f"type {function.get('name', '')} = (_: {{\n{_ts_properties(params)}}}) => any;\n\n"
            )
        else:
            parts.append(f"type {function.get('name', '')} = () => any;\n\n")
    parts.append("} // namespace functions")
    return "".join(parts)


def count_prompt(
    messages: list[dict[str, Any]],
    model: str,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
) -> int:
    total = count_messages(messages, model)
    if tools:
        # The namespace goes into a system message of its own.
        total += TOKENS_PER_MESSAGE + count(render_tools(tools), model)
    if response_format and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        total += count(orjson.dumps(schema).decode(), model)
    return total
