"""The assistant loop against the sandbox model and the mirror: tools, streaming, failures, Stop."""

from __future__ import annotations

import contextlib
import queue
import re
import threading

import pytest
from django.urls import reverse

from ai.models import UsageRecord
from chat import services
from chat.assistant import assistant_reply
from chat.events import session_group
from chat.models import Message
from tests.chat.conftest import reply_to
from tests.sheets.conftest import GroupInbox

pytestmark = pytest.mark.django_db

# No sheet words in it: the model answers in words, no tools (a reply of ~30 tokens).
PLAIN = (
    "Please summarise this note: the quarterly review went well, budgets are on track, the team "
    "hired two engineers, and the launch moved to March because the vendor needs more time."
)


@pytest.fixture
def inbox():
    inboxes: list[GroupInbox] = []

    def listen(group: str) -> GroupInbox:
        box = GroupInbox(group)
        box.thread.start()
        assert box.ready.wait(5)
        inboxes.append(box)
        return box

    yield listen
    for box in inboxes:
        box.stopped = True
        box.thread.join(5)


def test_the_assistant_reads_the_mirror_through_tools_and_records_usage(staff, tracker, ai, queued):
    session = services.session_create(owner=staff)
    reply = reply_to(session, "What columns does the Project Tracker sheet have?")
    assert reply.status == Message.Status.COMPLETE, reply.error
    names = [call["name"] for call in reply.tool_calls]
    assert names == ["list_sheets", "get_sheet_schema"]
    assert reply.tool_calls[1]["arguments"] == {"sheet_id": tracker.pk}
    assert "Status" in reply.content and "Project Tracker" in reply.content
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0 and reply.cost > 0
    records = UsageRecord.objects.filter(chat_session_id=session.pk, purpose="chat")
    assert records.count() == 3  # two tool rounds, then the answer
    assert sum(r.cost for r in records) == reply.cost


def test_a_sheet_nobody_shared_with_me_is_not_found_by_the_tools(alice, tracker, ai, queued):
    session = services.session_create(owner=alice)
    reply = reply_to(session, "What columns does the Project Tracker sheet have?")
    assert reply.status == Message.Status.COMPLETE
    assert "Status" not in reply.content
    assert '"sheets":[]' in reply.tool_results[0]["content"]


def test_a_chat_on_a_sheet_needs_no_lookup_first(staff, tracker, ai, queued):
    session = services.session_create(owner=staff, sheet=tracker)
    reply = reply_to(session, "Describe the columns")
    assert [call["name"] for call in reply.tool_calls] == ["get_sheet_schema"]
    assert reply.tool_calls[0]["arguments"] == {"sheet_id": tracker.pk}


@pytest.mark.django_db(transaction=True)
def test_the_reply_streams_to_the_sessions_group_then_is_announced_complete(
    alice, session, ai, queued, inbox
):
    box = inbox(session_group(session.pk))
    reply = reply_to(session, PLAIN)
    assert reply.status == Message.Status.COMPLETE
    events = []  # all were sent before reply_to returned
    with contextlib.suppress(queue.Empty):
        while True:
            events.append(box.get(timeout=1))
    assert events[-1] == {"type": "chat.message", "message_id": reply.pk}
    deltas = [e for e in events if e["type"] == "chat.delta"]
    assert deltas, events
    assert deltas[-1]["length"] == len(reply.content)
    assert [e["length"] for e in deltas] == sorted(e["length"] for e in deltas)


def test_a_stream_that_breaks_off_keeps_what_arrived_and_can_be_retried(
    client, alice, session, ai, queued
):
    ai.fault("openai", "stream_cut", after_chunks=6)  # the first reply only
    reply = reply_to(session, PLAIN)
    assert reply.status == Message.Status.ERROR
    assert reply.content and len(reply.content) < 80
    assert "Retry" in reply.error and "kept" in reply.error
    client.force_login(alice)
    page = client.get(reverse("chat:session", args=[session.pk])).content.decode()
    assert 'data-testid="retry"' in page and reply.content.split()[0] in page

    services.message_retry(message=reply)
    assistant_reply(message_id=reply.pk)
    reply.refresh_from_db()
    assert reply.status == Message.Status.COMPLETE and reply.error == ""
    assert len(reply.content) > 80


@pytest.mark.django_db(transaction=True)
def test_stop_ends_the_stream_and_keeps_what_arrived(alice, ai, queued, inbox, settings):
    settings.CHAT_SAVE_INTERVAL = 0.05
    ai.configure(openai={"ms_per_token": 60})
    session = services.session_create(owner=alice)
    box = inbox(session_group(session.pk))
    _question, reply = services.message_send(session=session, text=PLAIN)
    worker = threading.Thread(target=assistant_reply, kwargs={"message_id": reply.pk})
    worker.start()
    while (event := box.get(timeout=10))["type"] != "chat.delta":
        pass
    services.message_stop(message=Message.objects.get(pk=reply.pk))
    worker.join(10)
    assert not worker.is_alive()
    reply.refresh_from_db()
    assert reply.status == Message.Status.STOPPED
    first_words = re.sub(r"<[^>]+>", "", event["html"]).strip()
    assert reply.content.startswith(first_words)
    (record,) = UsageRecord.objects.filter(chat_session_id=session.pk)
    assert (record.outcome, record.purpose) == (UsageRecord.Outcome.STOPPED, "chat"), record.error

    ai.configure(openai={"ms_per_token": 0})
    full = reply_to(services.session_create(owner=alice), PLAIN)
    assert 0 < len(reply.content) < len(full.content)
