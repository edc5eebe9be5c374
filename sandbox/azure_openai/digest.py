"""Summaries of a conversation, as a model asked to "summarise the conversation below" writes
them: what was asked, what was answered, what happened, each item a short first sentence.

A request is one when an instruction asks to summarise a conversation and the text holds a
transcript (lines "User: …", "Assistant: …"). A summary given with it (lines "Asked: …",
"Answered: …", "Noted: …", as this writes them) is extended, not restarted; a word limit the
instruction states ("at most 120 words") is kept by dropping the oldest items first.
Deterministic: the same transcript gives the same digest.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.azure_openai import text as T
from sandbox.azure_openai.tokens import content_text

SPEAKERS = {"user": "Asked", "assistant": "Answered", "you": "Answered", "event": "Noted"}
HEADS = ("Asked", "Answered", "Noted")
ITEM_WORDS = 12
SEPARATOR = " | "
TURN = re.compile(r"^\s*(user|assistant|you|event)\s*:\s*(.*)$", re.I)
PRIOR = re.compile(rf"^\s*({'|'.join(HEADS)})\s*:\s*(.*)$")


def conversation_digest(messages: list[dict[str, Any]]) -> str | None:
    """The digest if `messages` ask to summarise a conversation, else None."""
    instruction = " ".join(
        content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    if not (re.search(r"summar", instruction, re.I) and "conversation" in instruction.lower()):
        return None
    text = "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "user")
    items: dict[str, list[str]] = {head: [] for head in HEADS}
    turns = 0
    for line in text.splitlines():
        prior = PRIOR.match(line)
        if prior:
            items[prior.group(1)].extend(
                part.strip() for part in prior.group(2).split(SEPARATOR.strip()) if part.strip()
            )
            continue
        turn = TURN.match(line)
        if turn and turn.group(2).strip():
            turns += 1
            items[SPEAKERS[turn.group(1).lower()]].append(
                T.first_sentence(turn.group(2), ITEM_WORDS).replace("|", "/")
            )
    if not turns:
        return None
    limit = re.search(r"\bat most (\d+) words\b", instruction, re.I)
    return _written(items, int(limit.group(1)) if limit else None)


def _written(items: dict[str, list[str]], max_words: int | None) -> str:
    def text() -> str:
        return "\n".join(f"{head}: {SEPARATOR.join(items[head])}" for head in HEADS if items[head])

    while max_words is not None and len(text().split()) > max_words:
        longest = max(HEADS, key=lambda head: len(items[head]))
        if len(items[longest]) <= 1:
            break
        items[longest].pop(0)  # the oldest goes first
    return text()
