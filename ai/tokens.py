"""Token counting offline: bpe-openai ships the encodings (tiktoken would download them).

Chat overhead follows OpenAI's published recipe (3 tokens per message, 1 per name, 3 priming the
reply). Tool definitions and response schemas are rendered differently by the service; we count
their JSON, which runs a little high, as an estimate for the limiter should.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import bpe_openai

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# bpe-openai refuses inputs of a million characters or 200,000 tokens; a slice boundary may split
# a word (a token more or less), fine for an estimate.
_SLICE = 50_000

# Base model prefixes → encoding; bpe-openai's own table predates gpt-5 and the o-series.
# Longest prefixes first: "gpt-4o" must not fall into "gpt-4".
_O200K = re.compile(r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o\d)")
_CL100K = re.compile(r"^(gpt-4|gpt-35-turbo|gpt-3\.5-turbo|text-embedding-(3|ada-002))")


def encoding_name(model: str) -> str:
    """The encoding a base model uses; raises ValueError naming what to configure otherwise."""
    base = model.strip().lower()
    if _O200K.match(base):
        return "o200k_base"
    if _CL100K.match(base):
        return "cl100k_base"
    raise ValueError(
        f"Unknown base model {model!r}: set the deployment's model in AZURE_OPENAI_DEPLOYMENTS "
        "to its base model name (e.g. gpt-4o-mini, gpt-4.1, gpt-35-turbo), not the deployment's."
    )


_encodings: dict[str, Any] = {}
_encodings_lock = threading.Lock()


def _encoding(name: str) -> Any:
    """Built once per process (about half a second of CPU): a job's threads all count their
    first prompt at the same moment, and each would build its own otherwise."""
    encoding = _encodings.get(name)
    if encoding is None:
        with _encodings_lock:
            encoding = _encodings.get(name)
            if encoding is None:
                encoding = _encodings[name] = bpe_openai.get_encoding(name)
    return encoding


def count_text(text: str, *, model: str) -> int:
    if not text:
        return 0
    encoding = _encoding(encoding_name(model))
    return sum(len(encoding.encode(text[i : i + _SLICE])) for i in range(0, len(text), _SLICE))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return str(content)


def count_messages(
    messages: Iterable[Mapping[str, Any]],
    *,
    model: str,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
) -> int:
    """Prompt tokens of a chat request, reply priming included."""
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += count_text(str(message.get("role", "")), model=model)
        total += count_text(_content_text(message.get("content")), model=model)
        if message.get("name"):
            total += TOKENS_PER_NAME + count_text(str(message["name"]), model=model)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            total += TOKENS_PER_MESSAGE
            total += count_text(str(function.get("name", "")), model=model)
            total += count_text(str(function.get("arguments", "")), model=model)
    if tools:
        total += TOKENS_PER_MESSAGE + _count_json(json.dumps(tools), model)
    if response_format:
        total += _count_json(json.dumps(response_format), model)
    return total


@functools.lru_cache(maxsize=256)
def _count_json(text: str, model: str) -> int:
    """Tool definitions and response schemas repeat call after call (a job's every row)."""
    return count_text(text, model=model)
