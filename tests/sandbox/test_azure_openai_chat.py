"""The Azure OpenAI stand-in where chat depends on it: parallel tool calls, unanswered calls,
strict schemas, api-version features, sheet tools called sensibly."""

from __future__ import annotations

import json

import openai
import pytest
from openai import AzureOpenAI

from tests.sandbox.test_azure_openai import client

NULLABLE_STRING = {"type": ["string", "null"]}
FILTERS = {
    "type": ["array", "null"],
    "items": {
        "type": "object",
        "properties": {
            "column": {"type": "string"},
            "op": {"type": "string", "enum": ["=", "!=", "<", ">", "contains"]},
            "value": {"type": "string"},
        },
        "required": ["column", "op", "value"],
        "additionalProperties": False,
    },
}


def function(name: str, description: str, properties: dict, strict: bool = False) -> dict:
    spec = {
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    }
    if strict:
        spec["strict"] = True
    return {"type": "function", "function": spec}


SHEET = {"sheet_id": {"type": "integer"}}
TOOLS = [
    function("list_sheets", "List the sheets.", {"name_contains": NULLABLE_STRING}),
    function(
        "query_rows",
        "Find rows of a sheet: filter, sort.",
        {
            **SHEET,
            "filters": FILTERS,
            "search": NULLABLE_STRING,
            "limit": {"type": ["integer", "null"]},
        },
    ),
    function(
        "aggregate",
        "Count rows or sum a column.",
        {
            **SHEET,
            "operation": {"type": "string", "enum": ["count", "sum", "avg", "min", "max"]},
            "column": NULLABLE_STRING,
            "group_by": NULLABLE_STRING,
            "filters": FILTERS,
        },
    ),
    function(
        "update_cells",
        "Propose new values for cells.",
        {
            **SHEET,
            "changes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "row_id": {"type": ["integer", "null"]},
                        "row_number": {"type": ["integer", "null"]},
                        "column": {"type": "string"},
                        "value": {"type": "string"},
                    },
                    "required": ["row_id", "row_number", "column", "value"],
                    "additionalProperties": False,
                },
            },
        },
    ),
]
SCHEMA = {
    "id": 42,
    "name": "Project Tracker",
    "row_count": 200,
    "columns": [
        {"title": "Task", "type": "TEXT_NUMBER", "primary": True},
        {
            "title": "Status",
            "type": "PICKLIST",
            "options": ["Not Started", "In Progress", "Blocked", "Done"],
        },
        {"title": "Hours", "type": "TEXT_NUMBER"},
    ],
}


def on_sheet(text: str) -> list[dict]:
    return [
        {"role": "system", "content": "You help with sheets."},
        {"role": "system", "content": "The sheet in context:\n" + json.dumps(SCHEMA)},
        {"role": "user", "content": text},
    ]


def calls_for(sandbox, messages, **kwargs) -> list:
    completion = client(sandbox).chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS, **kwargs
    )
    return completion.choices[0].message.tool_calls or []


def test_show_rows_where_status_is_blocked_becomes_a_filtered_query(sandbox):
    (call,) = calls_for(sandbox, on_sheet("Show rows where Status is Blocked"))
    assert call.function.name == "query_rows"
    arguments = json.loads(call.function.arguments)
    assert arguments["sheet_id"] == 42
    assert arguments["filters"] == [{"column": "Status", "op": "=", "value": "Blocked"}]
    assert arguments["search"] is None


def test_after_the_rows_come_back_the_answer_is_a_markdown_table(sandbox):
    messages = on_sheet("Show rows where Status is Blocked")
    (call,) = calls_for(sandbox, messages)
    result = {
        "sheet": "Project Tracker",
        "columns": ["row_id", "row_number", "Task", "Status"],
        "rows": [[11, 3, "Write spec", "Blocked"], [12, 9, "Fix | pipes", "Blocked"]],
        "total": 2,
        "next_offset": None,
    }
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
    ]
    completion = client(sandbox).chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS
    )
    answer = completion.choices[0].message.content
    assert "| row_number | Task | Status |" in answer
    assert "| 3 | Write spec | Blocked |" in answer
    assert "Fix \\| pipes" in answer


def test_counting_calls_aggregate_and_setting_a_cell_calls_update_cells(sandbox):
    (count,) = calls_for(sandbox, on_sheet("How many tasks are Done?"))
    assert count.function.name == "aggregate"
    arguments = json.loads(count.function.arguments)
    assert arguments["operation"] == "count" and arguments["column"] is None
    assert arguments["filters"] == [{"column": "Status", "op": "=", "value": "Done"}]
    (update,) = calls_for(sandbox, on_sheet("Set Status of row 3 to Done"))
    assert update.function.name == "update_cells"
    assert json.loads(update.function.arguments)["changes"] == [
        {"row_id": None, "row_number": 3, "column": "Status", "value": "Done"}
    ]
    (named,) = calls_for(sandbox, on_sheet("Set Status of row 4 to In Progress in Project Tracker"))
    assert json.loads(named.function.arguments)["changes"][0]["value"] == "In Progress"


def test_two_questions_get_two_tool_calls_in_one_reply_unless_parallel_calls_are_off(sandbox):
    question = on_sheet("How many tasks are Blocked and how many are Done?")
    calls = calls_for(sandbox, question)
    assert [c.function.name for c in calls] == ["aggregate", "aggregate"]
    assert len({c.id for c in calls}) == 2
    values = [json.loads(c.function.arguments)["filters"][0]["value"] for c in calls]
    assert values == ["Blocked", "Done"]
    (single,) = calls_for(sandbox, question, parallel_tool_calls=False)
    assert json.loads(single.function.arguments)["filters"][0]["value"] == "Blocked"


def test_a_tool_call_left_unanswered_is_refused_with_400(sandbox):
    messages = on_sheet("How many tasks are Blocked and how many are Done?")
    calls = calls_for(sandbox, messages)
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [c.model_dump(exclude_none=True) for c in calls],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"value": 3}'},
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        client(sandbox).chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    assert calls[1].id in refused.value.message
    assert calls[0].id not in refused.value.message.split("messages:")[-1]
    stray = [*on_sheet("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "{}"}]
    with pytest.raises(openai.BadRequestError):
        client(sandbox).chat.completions.create(model="gpt-4o-mini", messages=stray)


def test_a_strict_schema_must_close_every_object_and_require_every_property(sandbox):
    loose = function("f", "A tool.", {"a": {"type": "string"}}, strict=True)
    loose["function"]["parameters"]["required"] = []
    with pytest.raises(openai.BadRequestError) as refused:
        client(sandbox).chat.completions.create(
            model="gpt-4o-mini", messages=on_sheet("hi"), tools=[loose]
        )
    assert "'required' is required" in refused.value.message
    open_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"x": {"type": "string"}},
                "required": ["x"],
            },
        },
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client(sandbox).chat.completions.create(
            model="gpt-4o-mini", messages=on_sheet("Say json"), response_format=open_format
        )
    assert "additionalProperties" in refused.value.message
    closed = {**open_format["json_schema"]["schema"], "additionalProperties": False}
    completion = client(sandbox).chat.completions.create(
        model="gpt-4o-mini",
        messages=on_sheet("Say json"),
        response_format={
            "type": "json_schema",
            "json_schema": {**open_format["json_schema"], "schema": closed},
        },
    )
    assert set(json.loads(completion.choices[0].message.content)) == {"x"}


@pytest.mark.parametrize(
    ("api_version", "argument", "value"),
    [
        ("2023-05-15", "tools", TOOLS),
        ("2024-06-01", "parallel_tool_calls", False),
        (
            "2024-06-01",
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        ),
        ("2024-06-01", "stream_options", {"include_usage": True}),
    ],
)
def test_features_the_api_version_lacks_are_refused(sandbox, api_version, argument, value):
    old = AzureOpenAI(
        azure_endpoint=sandbox.url, api_key="sandbox-key", api_version=api_version, max_retries=0
    )
    kwargs = {argument: value}
    if argument == "parallel_tool_calls":
        kwargs["tools"] = TOOLS
    if argument == "stream_options":
        kwargs["stream"] = True
    with pytest.raises(openai.BadRequestError):
        old.chat.completions.create(model="gpt-4o-mini", messages=on_sheet("Say json"), **kwargs)
    if argument != "stream_options":
        current = client(sandbox).chat.completions.create(
            model="gpt-4o-mini", messages=on_sheet("Say json"), **kwargs
        )
        assert current.choices
