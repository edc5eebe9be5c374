from __future__ import annotations

import pytest

from ai.tokens import count_messages, count_text, encoding_name

# The example conversation of OpenAI's cookbook ("How to count tokens with tiktoken"), for which
# the API reported 129 prompt tokens on gpt-3.5-turbo / gpt-4 and 124 on gpt-4o / gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
    ],
)
def test_each_base_model_gets_its_encoding(model, encoding):
    assert encoding_name(model) == encoding


def test_an_unknown_model_is_refused_with_what_to_configure():
    with pytest.raises(ValueError, match="base model name") as excinfo:
        encoding_name("my-prod-deployment")
    assert "AZURE_OPENAI_DEPLOYMENTS" in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "cl100k", "o200k"),
    [
        ("hello world", 2, 2),
        ("tiktoken is great!", 6, 6),
        ("antidisestablishmentarianism", 6, 6),
        ("2 + 2 = 4", 7, 7),
        ("お誕生日おめでとう", 9, 8),
    ],
)
def test_text_counts_match_the_published_ones(text, cl100k, o200k):
    assert count_text(text, model="gpt-4") == cl100k
    assert count_text(text, model="gpt-4o") == o200k


def test_chat_overhead_matches_what_the_api_reported_for_the_cookbook_conversation():
    assert count_messages(COOKBOOK_MESSAGES, model="gpt-35-turbo") == 129
    assert count_messages(COOKBOOK_MESSAGES, model="gpt-4") == 129
    assert count_messages(COOKBOOK_MESSAGES, model="gpt-4o") == 124
    assert count_messages(COOKBOOK_MESSAGES, model="gpt-4o-mini") == 124


def test_empty_text_counts_nothing_and_long_text_is_counted_in_slices():
    assert count_text("", model="gpt-4o") == 0
    # bpe-openai refuses a million characters, or 200,000 tokens, in one piece.
    assert count_text("a " * 600_000, model="gpt-4o") >= 600_000


def test_threads_counting_their_first_prompt_together_build_the_encoding_once(monkeypatch):
    """A job's threads all count their first prompt at once; each built its own encoding
    (about half a second of CPU apiece) before."""
    import threading

    import bpe_openai

    from ai import tokens

    built = []
    real = bpe_openai.get_encoding

    def counted(name):
        built.append(name)
        return real(name)

    monkeypatch.setattr(tokens, "_encodings", {})
    monkeypatch.setattr(tokens.bpe_openai, "get_encoding", counted)
    start = threading.Barrier(8)
    counts = []

    def count():
        start.wait()
        counts.append(tokens.count_text("hello world", model="gpt-4o-mini"))

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == [2] * 8
    assert built == ["o200k_base"]
