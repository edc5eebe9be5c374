"""The calls jobs and chat make, against the sandbox, and the usage records they leave."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ai.errors import ContentFilterError, DeploymentNotFoundError, InvalidOutputError
from ai.models import UsageRecord
from ai.schema import Column, column_schema, values_validate
from ai.selectors import usage_for_job, usage_for_user, usage_totals
from ai.services import (
    CallContext,
    StreamEnd,
    TextDelta,
    ToolCall,
    call_estimate,
    chat_call,
    chat_stream,
    structured_call,
)
from tests.ai.test_tokens import COOKBOOK_MESSAGES

pytestmark = pytest.mark.django_db

FIND_ROWS = {
    "type": "function",
    "function": {
        "name": "find_rows",
        "description": "Find rows of a sheet whose column matches a value.",
        "parameters": {
            "type": "object",
            "properties": {
                "sheet_name": {"type": "string", "description": "The sheet's name"},
                "column": {"type": "string", "description": "The column to search"},
                "value": {"type": "string", "description": "The value to look for"},
            },
            "required": ["sheet_name", "column", "value"],
        },
    },
}
ASK = [
    {"role": "system", "content": "You help with Smartsheet sheets."},
    {"role": "user", "content": "Find rows in the sheet 'Support Tickets' where Status is Open."},
]
FORCED = {"type": "function", "function": {"name": "find_rows"}}
CHAT = CallContext(purpose="chat", chat_session_id=11)


def test_a_chat_call_returns_the_tool_calls_with_parsed_arguments(ai):
    result = chat_call(messages=ASK, tools=[FIND_ROWS], tool_choice=FORCED, context=CHAT)
    assert result.text == ""
    [call] = result.tool_calls
    assert call.name == "find_rows"
    assert call.id
    assert set(call.arguments) == {"sheet_name", "column", "value"}

    # Answering the tool call gets a text reply.
    follow_up = [
        *ASK,
        result.assistant_message(),
        {"role": "tool", "tool_call_id": call.id, "content": '{"rows": [{"id": 1}]}'},
    ]
    answer = chat_call(messages=follow_up, tools=[FIND_ROWS], context=CHAT)
    assert answer.text
    assert answer.tool_calls == []
    assert answer.finish_reason == "stop"


def test_a_streamed_call_yields_the_same_text_as_pieces_then_the_end(ai):
    messages = [
        {"role": "user", "content": "Summarise: the release went well and users are happy."}
    ]
    whole = chat_call(messages=messages, context=CHAT)
    events = list(chat_stream(messages=messages, context=CHAT))

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == whole.text
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.finish_reason == "stop"
    assert end.prompt_tokens == whole.prompt_tokens
    assert end.completion_tokens == whole.completion_tokens
    assert end.cost == whole.cost > 0


def test_a_streamed_call_assembles_tool_call_arguments_from_their_pieces(ai):
    whole = chat_call(messages=ASK, tools=[FIND_ROWS], tool_choice=FORCED, context=CHAT)
    events = list(chat_stream(messages=ASK, tools=[FIND_ROWS], tool_choice=FORCED, context=CHAT))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == whole.tool_calls
    assert isinstance(events[-1], StreamEnd)


def test_a_streamed_reply_the_content_filter_stops_fails_the_item(ai):
    messages = [{"role": "user", "content": "Summarise FILTER-COMPLETION: a long story here."}]
    stream = chat_stream(messages=messages, context=CHAT)
    with pytest.raises(ContentFilterError) as excinfo:
        list(stream)
    assert excinfo.value.where == "completion"
    record = UsageRecord.objects.get()
    assert record.outcome == "content_filter"
    assert record.completion_tokens > 0


def test_a_reply_the_content_filter_stops_fails_the_item(ai):
    messages = [{"role": "user", "content": "Summarise FILTER-COMPLETION: a long story here."}]
    with pytest.raises(ContentFilterError) as excinfo:
        chat_call(messages=messages, context=CHAT)
    assert excinfo.value.where == "completion"


COLUMNS = [
    Column(title="Priority", type="PICKLIST", options=("High", "Medium", "Low")),
    Column(title="Needs reply", type="CHECKBOX"),
    Column(title="Due", type="DATE"),
    Column(title="Score", type="TEXT_NUMBER", numeric=True),
    Column(title="Summary", type="TEXT_NUMBER"),
]


def test_a_structured_call_returns_values_that_fit_the_columns(ai):
    messages = [
        {
            "role": "system",
            "content": "Triage the ticket: priority, whether it needs a reply, "
            "a due date, a score from 1 to 5 and a one-line summary.",
        },
        {"role": "user", "content": "The app crashes on login since the update. Urgent!"},
    ]
    result = structured_call(
        columns=COLUMNS, messages=messages, context=CallContext(purpose="job", job_id=5)
    )
    values = result.values
    assert set(values) == {"Priority", "Needs reply", "Due", "Score", "Summary"}
    assert values["Priority"] in ("High", "Medium", "Low")
    assert isinstance(values["Needs reply"], bool)
    assert isinstance(values["Score"], (int, float))
    assert isinstance(values["Summary"], str)
    assert len(values["Due"]) == 10


@pytest.mark.parametrize(
    "options",
    [("Bug", "Feature request", "Question"), ("Positive", "Neutral", "Negative"), ("Q1", "Q2")],
)
def test_a_structured_call_only_ever_picks_one_of_the_picklist_options(ai, options):
    column = Column(title="Category", type="PICKLIST", options=options)
    result = structured_call(
        columns=[column],
        messages=[{"role": "user", "content": "Classify: I love the new dashboard, thanks!"}],
        context=CallContext(purpose="job", job_id=5),
    )
    assert result.values["Category"] in options


def test_a_structured_reply_cut_off_at_max_tokens_fails_the_item(ai):
    with pytest.raises(InvalidOutputError, match="cut off at max_tokens"):
        structured_call(
            columns=COLUMNS,
            messages=[{"role": "user", "content": "Triage: the export is slow."}],
            context=CallContext(purpose="job", job_id=5),
            max_tokens=3,
        )
    assert UsageRecord.objects.get(job_id=5).outcome == "invalid_output"


def test_an_estimate_counts_the_prompt_offline_and_prices_the_whole_max_tokens(ai):
    # OpenAI's cookbook conversation, for which the API itself reported 124 prompt tokens on
    # gpt-4o-mini: a count fixed outside this code and outside the sandbox.
    estimate = call_estimate(messages=COOKBOOK_MESSAGES, max_tokens=100)
    assert estimate.deployment == "gpt-4o-mini"
    assert estimate.prompt_tokens == 124
    assert estimate.max_cost == (124 * Decimal("0.00015") + 100 * Decimal("0.0006")) / 1000
    result = chat_call(messages=COOKBOOK_MESSAGES, context=CHAT, max_tokens=100)
    assert estimate.max_cost > result.cost


def test_the_schema_sends_picklist_options_as_an_enum_and_checkboxes_as_booleans():
    assert column_schema(COLUMNS[0]) == {"type": "string", "enum": ["High", "Medium", "Low"]}
    assert column_schema(COLUMNS[1])["type"] == "boolean"
    assert column_schema(COLUMNS[2])["format"] == "date"
    assert column_schema(COLUMNS[3])["type"] == "number"
    assert column_schema(COLUMNS[4])["type"] == "string"
    with pytest.raises(ValueError, match="without options"):
        column_schema(Column(title="Status", type="PICKLIST"))


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (
            {
                "Priority": "Urgent",
                "Needs reply": True,
                "Due": "2026-01-05",
                "Score": 3,
                "Summary": "",
            },
            "Priority",
        ),
        (
            {
                "Priority": "High",
                "Needs reply": "yes",
                "Due": "2026-01-05",
                "Score": 3,
                "Summary": "",
            },
            "Needs reply",
        ),
        (
            {
                "Priority": "High",
                "Needs reply": True,
                "Due": "05/01/2026",
                "Score": 3,
                "Summary": "",
            },
            "Due",
        ),
        (
            {
                "Priority": "High",
                "Needs reply": True,
                "Due": "2026-02-30",
                "Score": 3,
                "Summary": "",
            },
            "Due",
        ),
        (
            {
                "Priority": "High",
                "Needs reply": True,
                "Due": "2026-01-05",
                "Score": "3",
                "Summary": "",
            },
            "Score",
        ),
        ({"Priority": "High", "Needs reply": True, "Due": "2026-01-05", "Score": 3}, "Summary"),
    ],
)
def test_values_that_do_not_fit_the_columns_fail_the_item_and_say_which(values, complaint):
    with pytest.raises(InvalidOutputError, match=complaint):
        values_validate(COLUMNS, values)


def test_values_that_fit_are_returned():
    values = {
        "Priority": "Low",
        "Needs reply": False,
        "Due": "2026-01-05",
        "Score": 2.5,
        "Summary": "ok",
    }
    assert values_validate(COLUMNS, values) == values


def test_each_call_writes_a_usage_record_with_its_cost_from_the_prices(ai, alice):
    context = CallContext(purpose="job", user_id=alice.id, job_id=42)
    first = chat_call(messages=[{"role": "user", "content": "Summarise: fine."}], context=context)
    second = chat_call(
        messages=[{"role": "user", "content": "Summarise: all good."}],
        context=context,
        deployment="gpt-4o",
    )
    records = {r.deployment: r for r in UsageRecord.objects.filter(job_id=42)}
    mini, big = records["gpt-4o-mini"], records["gpt-4o"]
    assert (mini.prompt_tokens, mini.completion_tokens) == (
        first.prompt_tokens,
        first.completion_tokens,
    )
    assert mini.user == alice
    assert mini.purpose == "job"
    assert mini.outcome == "ok"
    # gpt-4o-mini: $0.00015 in, $0.0006 out per 1,000 tokens; gpt-4o: $0.0025 / $0.01.
    assert (
        mini.cost
        == (
            Decimal(first.prompt_tokens) * Decimal("0.00015")
            + Decimal(first.completion_tokens) * Decimal("0.0006")
        )
        / 1000
    )
    assert (
        big.cost
        == (
            Decimal(second.prompt_tokens) * Decimal("0.0025")
            + Decimal(second.completion_tokens) * Decimal("0.01")
        )
        / 1000
    )
    assert mini.cost == first.cost

    totals = usage_for_job(job_id=42)
    assert totals.calls == 2
    assert totals.prompt_tokens == first.prompt_tokens + second.prompt_tokens
    assert totals.cost == first.cost + second.cost
    assert usage_for_user(user_id=alice.id) == totals
    assert usage_for_job(job_id=43).calls == 0


def test_failed_calls_are_recorded_with_their_outcome(ai, alice, settings):
    context = CallContext(purpose="job", user_id=alice.id, job_id=7)
    with pytest.raises(ContentFilterError):
        chat_call(messages=[{"role": "user", "content": "FORBIDDEN-TOPIC"}], context=context)
    settings.AZURE_OPENAI_DEPLOYMENTS = {
        **settings.AZURE_OPENAI_DEPLOYMENTS,
        "typo": settings.AZURE_OPENAI_DEPLOYMENTS["gpt-4o"],
    }
    with pytest.raises(DeploymentNotFoundError):
        chat_call(messages=[{"role": "user", "content": "hi"}], context=context, deployment="typo")
    outcomes = sorted(UsageRecord.objects.filter(job_id=7).values_list("outcome", "deployment"))
    assert outcomes == [("content_filter", "gpt-4o-mini"), ("not_found", "typo")]
    assert all(r.error for r in UsageRecord.objects.filter(job_id=7))


def test_staff_see_usage_totals_for_the_filtered_records_in_the_admin(ai, client, staff, alice):
    for deployment in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o"):
        chat_call(
            messages=[{"role": "user", "content": f"Summarise the {deployment} run."}],
            context=CallContext(purpose="job", user_id=alice.id, job_id=1),
            deployment=deployment,
        )
    client.force_login(staff)
    response = client.get("/admin/ai/usagerecord/", {"deployment__exact": "gpt-4o-mini"})
    assert response.status_code == 200
    selected = usage_totals(UsageRecord.objects.filter(deployment="gpt-4o-mini"))
    assert selected.calls == 2
    assert selected.cost != usage_totals().cost
    page = response.content.decode()
    assert "2 calls" in page
    assert f"${selected.cost}" in page
