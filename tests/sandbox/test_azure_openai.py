"""Azure OpenAI stand-in, driven through the real `openai` package (and raw HTTP for headers)."""

from __future__ import annotations

import json

import bpe_openai
import httpx
import openai
import pytest
from openai import AzureOpenAI

API_VERSION = "2024-10-21"
URL = "{base}/openai/deployments/{deployment}/chat/completions?api-version=" + API_VERSION
HEADERS = {"api-key": "sandbox-key"}


def client(sandbox, **kwargs) -> AzureOpenAI:
    kwargs.setdefault("max_retries", 0)
    return AzureOpenAI(
        azure_endpoint=sandbox.url, api_key="sandbox-key", api_version=API_VERSION, **kwargs
    )


def post(sandbox, body: dict, deployment: str = "gpt-4o-mini", **kwargs) -> httpx.Response:
    url = URL.format(base=sandbox.url, deployment=deployment)
    return httpx.post(url, json=body, headers=kwargs.pop("headers", HEADERS), timeout=10, **kwargs)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def counters(sandbox) -> dict:
    return sandbox.stats()["services"].get("openai", {}).get("counters", {})


def expected_prompt_tokens(messages: list[dict]) -> int:
    enc = bpe_openai.get_encoding("o200k_base")
    return 3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages)


def test_a_completion_has_azure_shape_and_usage_counted_with_a_real_tokenizer(sandbox):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello world"},
    ]
    raw = client(sandbox).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages
    )
    completion = raw.parse()
    assert len(bpe_openai.get_encoding("o200k_base").encode("hello world")) == 2
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.system_fingerprint.startswith("fp_")
    assert completion.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.model_extra["content_filter_results"]["hate"] == {
        "filtered": False,
        "severity": "safe",
    }
    usage = completion.usage
    assert usage.prompt_tokens == expected_prompt_tokens(messages)
    assert usage.completion_tokens == len(
        bpe_openai.get_encoding("o200k_base").encode(choice.message.content)
    )
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw.headers["x-ratelimit-limit-requests"] == "600"
    stats = sandbox.stats()["services"]["openai"]
    assert stats["routes"] == {"chat.completions": 1}
    assert stats["counters"]["requests.gpt-4o-mini"] == 1
    assert stats["counters"]["prompt_tokens"] == usage.prompt_tokens
    assert stats["counters"]["completion_tokens"] == usage.completion_tokens


def test_the_same_request_gets_the_same_answer(sandbox):
    messages = ask("Summarize: The export dialog froze twice today and support never called back.")
    first = client(sandbox).chat.completions.create(model="gpt-4o", messages=messages)
    second = client(sandbox).chat.completions.create(model="gpt-4o", messages=messages)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.choices[0].message.content == (
        "The export dialog froze twice today and support never called back."
    )


def test_row_prompts_get_answers_computed_from_the_row(sandbox):
    c = client(sandbox)

    def answer(text: str) -> str:
        reply = c.chat.completions.create(model="gpt-4o-mini", messages=ask(text))
        return reply.choices[0].message.content

    assert answer("What is the sentiment of this review: I love it, setup was easy.") == "Positive"
    assert answer("Sentiment of: The app keeps crashing and support is rude.") == "Negative"
    assert answer("Classify as one of: Bug, Feature Request, Question\nText: Please add dark mode")
    assert (
        answer("Classify as one of: Bug, Feature Request, Question\nText: It crashes on save")
        == "Bug"
    )
    assert answer("Does this mention pricing? Text: The price doubled overnight.") == "Yes"
    assert answer("Does this mention pricing? Text: The login page is slow.") == "No"
    score = int(answer("Rate satisfaction from 1 to 5: Excellent, fast and friendly service."))
    assert 4 <= score <= 5


def test_max_tokens_truncates_the_reply_and_reports_length(sandbox):
    reply = client(sandbox).chat.completions.create(
        model="gpt-4o-mini",
        messages=ask("Summarize: The quarterly report shows revenue up in every single region."),
        max_tokens=3,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 3
    assert reply.choices[0].message.content == "The quarterly report"


def test_streaming_sends_azure_first_chunk_deltas_finish_and_usage(sandbox):
    stream = client(sandbox).chat.completions.create(
        model="gpt-4o",
        messages=ask("Summarize: Shipping was late but the support team sorted it out quickly."),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices == []
    assert chunks[0].model_extra["prompt_filter_results"]
    assert chunks[1].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Shipping was late but the support team sorted it out quickly."
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(
        bpe_openai.get_encoding("o200k_base").encode(text)
    )


def test_a_raw_stream_ends_with_done(sandbox):
    body = {"messages": ask("hello"), "stream": True}
    with httpx.stream(
        "POST", URL.format(base=sandbox.url, deployment="gpt-4o"), json=body, headers=HEADERS
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-ratelimit-remaining-requests"]
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["choices"] == []


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }
    for name, description, properties in [
        ("list_sheets", "List the sheets the user can open.", {}),
        (
            "search_rows",
            "Find rows in a sheet whose column matches a value.",
            {
                "sheet_name": {"type": "string"},
                "column": {"type": "string"},
                "value": {"type": "string"},
            },
        ),
        (
            "column_stats",
            "Count, sum or average the values of a column.",
            {
                "sheet_name": {"type": "string"},
                "column": {"type": "string"},
                "operation": {"type": "string", "enum": ["count", "sum", "average"]},
            },
        ),
        (
            "propose_cell_change",
            "Propose setting one cell to a new value; the user applies it.",
            {
                "sheet_name": {"type": "string"},
                "row_number": {"type": "integer"},
                "column": {"type": "string"},
                "new_value": {"type": "string"},
            },
        ),
    ]
]


@pytest.mark.parametrize(
    ("question", "tool", "arguments"),
    [
        ("Which sheets can I see?", "list_sheets", {}),
        (
            'Find rows in the "Q3 Leads" sheet where Status is Open',
            "search_rows",
            {"sheet_name": "Q3 Leads", "column": "Status", "value": "Open"},
        ),
        (
            "What is the average Amount in the Q3 Leads sheet?",
            "column_stats",
            {"sheet_name": "Q3 Leads", "column": "Amount", "operation": "average"},
        ),
        (
            'Change the Status of row 4 in "Q3 Leads" to Won',
            "propose_cell_change",
            {"sheet_name": "Q3 Leads", "row_number": 4, "column": "Status", "new_value": "Won"},
        ),
    ],
)
def test_the_model_calls_the_tool_the_request_needs_with_valid_arguments(
    sandbox, question, tool, arguments
):
    reply = client(sandbox).chat.completions.create(
        model="gpt-4o-mini", messages=ask(question), tools=TOOLS
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == tool
    assert json.loads(call.function.arguments) == arguments


def test_after_a_tool_result_the_model_answers_from_it(sandbox):
    c = client(sandbox)
    messages = ask("What is the total Amount in the Q3 Leads sheet?")
    first = c.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments)["operation"] == "sum"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": json.dumps({"column": "Amount", "sum": 48250.5, "count": 12}),
        },
    ]
    second = c.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert "48,250.5" in second.choices[0].message.content
    assert "12" in second.choices[0].message.content


def test_tool_choice_none_required_and_named_are_honoured(sandbox):
    c = client(sandbox)
    messages = ask("Tell me something nice")
    auto = c.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    assert auto.choices[0].message.tool_calls is None
    required = c.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS, tool_choice="required"
    )
    assert required.choices[0].message.tool_calls
    named = c.chat.completions.create(
        model="gpt-4o-mini",
        messages=ask("Which sheets can I see?"),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "column_stats"}},
    )
    assert named.choices[0].message.tool_calls[0].function.name == "column_stats"
    # OpenAI reports "stop" when the call was forced.
    assert named.choices[0].finish_reason == "stop"
    none = c.chat.completions.create(
        model="gpt-4o-mini",
        messages=ask("Which sheets can I see?"),
        tools=TOOLS,
        tool_choice="none",
    )
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content


def test_a_streamed_tool_call_arrives_as_tool_call_deltas(sandbox):
    stream = client(sandbox).chat.completions.create(
        model="gpt-4o-mini",
        messages=ask('Find rows in the "Q3 Leads" sheet where Owner is Dana'),
        tools=TOOLS,
        stream=True,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            name += delta.function.name or ""
            arguments += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "search_rows"
    assert json.loads(arguments) == {"sheet_name": "Q3 Leads", "column": "Owner", "value": "Dana"}
    assert finish == "tool_calls"


PRIORITY_SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["Bug", "Billing", "Feature", "Praise"]},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string"},
        "mentions_refund": {"type": "boolean"},
        "owner": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": [
        "category",
        "sentiment",
        "urgency",
        "summary",
        "mentions_refund",
        "owner",
        "tags",
    ],
    "additionalProperties": False,
}
TICKETS = [
    ("The app crashes with an error whenever I save a file.", "Bug", "negative"),
    ("I was charged twice this month, please refund the extra payment.", "Billing", None),
    ("Could you add an option to export to PDF? That would be great.", "Feature", None),
    ("Love the new grid, thanks team, it is fast and easy!", "Praise", "positive"),
    ("Invoice shows the wrong price for our plan.", "Billing", None),
    ("The sync failed again and the page is broken.", "Bug", "negative"),
    ("Thanks, the support was excellent and friendly.", "Praise", "positive"),
    ("Would like support for recurring tasks.", "Feature", None),
]


def test_json_schema_output_validates_and_picks_the_fitting_enum_values(sandbox):
    c = client(sandbox)
    for ticket, category, sentiment in TICKETS:
        reply = c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Triage the support ticket."},
                {"role": "user", "content": ticket},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "triage", "strict": True, "schema": PRIORITY_SCHEMA},
            },
        )
        value = json.loads(reply.choices[0].message.content)
        assert set(value) == set(PRIORITY_SCHEMA["properties"])
        assert value["category"] == category, ticket
        assert value["sentiment"] in ("positive", "neutral", "negative")
        if sentiment:
            assert value["sentiment"] == sentiment, ticket
        assert isinstance(value["urgency"], int) and 1 <= value["urgency"] <= 5
        assert isinstance(value["summary"], str) and value["summary"]
        assert value["mentions_refund"] is ("refund" in ticket)
        assert value["owner"] is None or isinstance(value["owner"], str)
        assert all(isinstance(tag, str) for tag in value["tags"])


def test_json_object_mode_returns_a_json_object(sandbox):
    reply = client(sandbox).chat.completions.create(
        model="gpt-4o",
        messages=ask('Return JSON with keys "summary" and "sentiment" for: Great call today.'),
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content) == {
        "summary": "Great call today.",
        "sentiment": "Positive",
    }


def test_json_object_mode_without_the_word_json_is_refused(sandbox):
    with pytest.raises(openai.BadRequestError) as caught:
        client(sandbox).chat.completions.create(
            model="gpt-4o", messages=ask("Say hi"), response_format={"type": "json_object"}
        )
    assert "must contain the word 'json'" in caught.value.message
