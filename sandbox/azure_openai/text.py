"""Small, deterministic text reading for the stand-in model: words, sentiment, summaries, picks.

Nothing here is clever; it only has to be plausible and stable, so tests and demos read sensibly.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any


def words_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'_-]*")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "without",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "as",
        "into",
        "about",
        "over",
        "under",
        "than",
        "then",
        "so",
        "such",
        "do",
        "does",
        "did",
        "done",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "their",
        "his",
        "her",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "each",
        "every",
        "some",
        "no",
        "not",
        "only",
        "very",
        "just",
        "also",
        "there",
        "here",
        "if",
        "please",
        "tell",
        "give",
        "show",
        "me",
        "us",
        "one",
        "row",
        "text",
        "following",
        "based",
    ]
)
POSITIVE = frozenset(
    [
        "good",
        "great",
        "excellent",
        "love",
        "loved",
        "lovely",
        "like",
        "liked",
        "happy",
        "pleased",
        "amazing",
        "awesome",
        "fantastic",
        "fast",
        "quick",
        "easy",
        "helpful",
        "recommend",
        "perfect",
        "smooth",
        "thanks",
        "thank",
        "wonderful",
        "best",
        "nice",
        "satisfied",
        "delighted",
        "impressed",
        "reliable",
        "intuitive",
        "friendly",
        "efficient",
        "glad",
        "enjoy",
        "enjoyed",
        "works",
        "resolved",
        "fixed",
    ]
)
NEGATIVE = frozenset(
    [
        "bad",
        "poor",
        "terrible",
        "awful",
        "hate",
        "hated",
        "slow",
        "broken",
        "crash",
        "crashes",
        "crashed",
        "crashing",
        "bug",
        "bugs",
        "buggy",
        "error",
        "errors",
        "fail",
        "fails",
        "failed",
        "failure",
        "issue",
        "issues",
        "problem",
        "problems",
        "angry",
        "annoyed",
        "annoying",
        "frustrated",
        "frustrating",
        "disappointed",
        "disappointing",
        "worse",
        "worst",
        "refund",
        "cancel",
        "cancelled",
        "late",
        "delay",
        "delayed",
        "confusing",
        "useless",
        "expensive",
        "rude",
        "missing",
        "lost",
        "wrong",
        "unusable",
        "complaint",
        "unacceptable",
    ]
)
NEGATIONS = frozenset({"not", "no", "never", "isn't", "wasn't", "don't", "doesn't", "didn't"})
# Words that suggest an option even when the option's own name is absent from the text.
RELATED: dict[str, frozenset[str]] = {
    "bug": frozenset(
        [
            "crash",
            "crashes",
            "error",
            "broken",
            "fails",
            "failed",
            "bug",
            "bugs",
            "freeze",
            "exception",
        ]
    ),
    "feature": frozenset(
        ["add", "wish", "would", "like", "request", "feature", "support", "could", "option"]
    ),
    "question": frozenset(["how", "what", "why", "when", "where", "question", "wondering", "ask"]),
    "billing": frozenset(
        ["invoice", "charge", "charged", "refund", "price", "pricing", "payment", "billing"]
    ),
    "urgent": frozenset(["urgent", "asap", "immediately", "critical", "down", "outage", "blocker"]),
    "high": frozenset(["urgent", "critical", "severe", "asap", "outage", "blocker", "important"]),
    "low": frozenset(["minor", "cosmetic", "trivial", "later", "whenever", "small"]),
    "complaint": NEGATIVE,
    "praise": POSITIVE,
}
QUOTED = re.compile(
    r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d|\u2018([^\u2019]+)\u2019|(?:(?<=\s)|^)'([^']+)'(?=[\s.,;:!?)]|$)"
)


def words(text: str) -> list[str]:
    return [w.lower().strip("'") for w in WORD.findall(text)]


def stem(word: str) -> str:
    """A crude stem so 'pricing' meets 'price' and 'crashes' meets 'crash'."""
    word = word.lower()
    for suffix in ("ations", "ation", "ings", "ing", "ies", "es", "ed", "s", "e"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}


def stable_int(*parts: Any) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def quoted(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in QUOTED.finditer(text)]


def sentiment_score(text: str) -> int:
    score = 0
    tokens = words(text)
    for i, word in enumerate(tokens):
        polarity = (word in POSITIVE) - (word in NEGATIVE)
        if polarity and any(t in NEGATIONS for t in tokens[max(0, i - 2) : i]):
            polarity = -polarity
        score += polarity
    return score


def sentiment(text: str) -> str:
    score = sentiment_score(text)
    return "Positive" if score > 0 else "Negative" if score < 0 else "Neutral"


def first_sentence(text: str, max_words: int = 20) -> str:
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    parts = sentence.split()
    if len(parts) > max_words:
        sentence = " ".join(parts[:max_words]).rstrip(",;:") + "…"
    return sentence


def summarize(text: str, max_words: int = 20) -> str:
    text = row_values(text)
    if not text.strip():
        return "No content to summarize."
    return first_sentence(text, max_words)


def row_values(text: str) -> str:
    """'Title: value' lines keep just their values, which is what a summary should talk about."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and all(re.match(r"^[^:]{1,40}:\s", line) for line in lines):
        values = [line.split(":", 1)[1].strip() for line in lines]
        return ". ".join(v.rstrip(".") for v in values if v) + "."
    return " ".join(lines)


def option_score(option: str, text_words: set[str], text_sentiment: int) -> float:
    opt_words = content_words(option)
    score = 2.0 * len(opt_words & text_words)
    for word in words(option):
        related = RELATED.get(word) or RELATED.get(stem(word))
        if related:
            score += len({stem(r) for r in related} & text_words)
    lowered = option.lower()
    if text_sentiment > 0 and any(k in lowered for k in ("positive", "good", "happy")):
        score += 1.5
    if text_sentiment < 0 and any(
        k in lowered for k in ("negative", "bad", "complaint", "unhappy")
    ):
        score += 1.5
    if text_sentiment == 0 and any(k in lowered for k in ("neutral", "mixed", "other")):
        score += 0.5
    return score


def best_option(options: list[Any], text: str, salt: str = "") -> Any:
    """The option that best fits the text; stable tie-break by hash so the pick never wobbles."""
    if not options:
        raise ValueError("best_option needs at least one option")
    text_words = content_words(text)
    polarity = sentiment_score(text)
    scored = [(option_score(str(o), text_words, polarity), i) for i, o in enumerate(options)]
    top = max(s for s, _ in scored)
    best = [i for s, i in scored if s == top]
    if top == 0 and any(str(o).lower() in ("other", "none", "unknown", "n/a") for o in options):
        return next(o for o in options if str(o).lower() in ("other", "none", "unknown", "n/a"))
    return options[best[stable_int(text, salt) % len(best)]]


def parse_options(instruction: str) -> list[str]:
    """Options an instruction lists: 'one of: A, B or C', 'categories: A | B', '(A/B/C)'."""
    match = re.search(
        r"(?:one of|options?|categories|category|labels?|choose from|pick from|classify as|"
        r"classify into|either)\s*[:\-]?\s*(.+)",
        instruction,
        re.IGNORECASE,
    )
    if not match:
        return []
    tail = match.group(1).split("\n")[0]
    # "Classify as one of: ..." - the list starts after the last cue.
    tail = re.sub(r"^(?:one of|the following)\s*[:\-]?\s*", "", tail, flags=re.IGNORECASE)
    tail = re.split(r"(?<=[a-z])\.\s", tail)[0].rstrip(".")
    parts = re.split(r"\s*(?:,|\||/|;|\bor\b)\s*", tail)
    options = [p.strip(" \"'`()[]") for p in parts]
    options = [o for o in options if o and len(o.split()) <= 4]
    return options if len(options) >= 2 else []


def number_range(text: str) -> tuple[float, float] | None:
    match = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:-|\u2013|to|through)\s*(-?\d+(?:\.\d+)?)", text)
    if match:
        low, high = float(match.group(1)), float(match.group(2))
        if low < high:
            return low, high
    match = re.search(r"out of\s*(\d+)", text)
    if match:
        return 1.0, float(match.group(1))
    return None


def inverted(question: str) -> bool:
    """Scores of trouble (urgency, risk, severity) rise as the text turns negative."""
    return bool(
        re.search(r"urgen|priorit|severit|risk|churn|escalat|problem|complain", question, re.I)
    )


def scaled_score(text: str, low: float, high: float, salt: str = "", invert: bool = False) -> float:
    """A score that follows sentiment: praise lands high, complaints low, the rest mid-range."""
    polarity = max(-3, min(3, sentiment_score(text)))
    if invert:
        polarity = -polarity
    if invert and RELATED["urgent"] & set(words(text)):
        polarity += 2
    fraction = 0.5 + polarity / 7.0
    nudge = ((stable_int(text, salt) % 11) - 5) / 100.0
    fraction = min(1.0, max(0.0, fraction + nudge))
    return low + (high - low) * fraction


def yes_no(question: str, text: str) -> bool:
    """Yes when the text touches what the question asks about (negative questions flip)."""
    asked = content_words(question) - {"yes", "mention", "mentions", "contain", "contains"}
    asked -= {stem(w) for w in ("mention", "contain", "answer", "question", "row", "text")}
    if not asked:
        return sentiment_score(text) >= 0
    hit = bool(asked & content_words(text))
    if not hit:
        for word in asked:
            related = RELATED.get(word)
            if related and {stem(r) for r in related} & content_words(text):
                hit = True
                break
    if not hit and ("positive" in asked or "happy" in asked):
        hit = sentiment_score(text) > 0
    if not hit and ({"negative", "complaint", "unhappy", "angry"} & asked):
        hit = sentiment_score(text) < 0
    return hit


def keywords(text: str, limit: int = 5) -> list[str]:
    seen: dict[str, int] = {}
    for i, word in enumerate(words(row_values(text))):
        if word in STOPWORDS or len(word) < 4 or word.isdigit():
            continue
        seen.setdefault(word, i)
    counts = {w: words(text).count(w) for w in seen}
    ranked = sorted(seen, key=lambda w: (-counts[w], seen[w]))
    return ranked[:limit]


def numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?", text)]
