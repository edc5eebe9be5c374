"""A long chat's history: older turns replaced by the model's summary, made once, reused by the
next replies, extended as more turns fall out; condensed to first lines if the model fails."""

from __future__ import annotations

import logging

import pytest

from ai.models import UsageRecord
from ai.tokens import count_messages
from chat import services
from chat.history import CONDENSED_HEAD, SUMMARY_HEAD, conversation, system_prompt
from chat.models import ChatSession, Message
from tests.chat.conftest import reply_to

pytestmark = pytest.mark.django_db

BUDGET = 1500
FILLER = "word " * 150  # ~150 tokens: a handful of turns fill the budget


def long_chat(session: ChatSession, turns: range) -> None:
    for n in turns:
        services.message_add(session=session, role="user", content=f"Question {n}? {FILLER}")
        services.message_add(session=session, role="assistant", content=f"Answer {n}. {FILLER}")


def model_calls(sandbox) -> int:
    return sandbox.stats()["services"].get("openai", {}).get("requests", 0)


def summaries(session: ChatSession):
    return UsageRecord.objects.filter(chat_session_id=session.pk, purpose="chat_summary")


def asked(summary: str) -> list[str]:
    line = next(line for line in summary.splitlines() if line.startswith("Asked: "))
    return line.removeprefix("Asked: ").split(" | ")


def questions_through(session: ChatSession, seq: int) -> list[str]:
    return [
        m.content.split("?")[0] + "?" for m in session.messages.filter(role="user", seq__lte=seq)
    ]


@pytest.fixture
def budget(settings):
    settings.CHAT_HISTORY_TOKENS = BUDGET
    return BUDGET


def history_of(sent: list[dict], session: ChatSession) -> list[dict]:
    return sent[len(system_prompt(session)) :]


def test_a_long_chat_sends_the_models_summary_of_older_turns_within_the_budget(
    alice, session, ai, queued, budget
):
    long_chat(session, range(12))
    before = model_calls(ai)
    reply = reply_to(session, "Anything else to add?")
    assert reply.status == Message.Status.COMPLETE, reply.error
    assert model_calls(ai) - before == 2  # the summary, then the reply
    (record,) = summaries(session)
    assert record.outcome == "ok" and record.prompt_tokens > 0 and record.completion_tokens > 0

    session.refresh_from_db()
    assert 0 < session.summary_through_seq < reply.seq - 1
    # The model summarised exactly the turns that fell out, every question among them.
    assert asked(session.summary) == questions_through(session, session.summary_through_seq)

    sent = conversation(reply=reply)
    assert model_calls(ai) - before == 2  # the stored summary, not a new one
    history = history_of(sent, session)
    assert count_messages(history, model="gpt-4o-mini") <= budget
    assert history[0] == {"role": "system", "content": f"{SUMMARY_HEAD}\n{session.summary}"}
    # Then every message after the summarised ones, whole.
    after = session.messages.filter(seq__gt=session.summary_through_seq, seq__lt=reply.seq)
    assert [m["content"] for m in history[1:]] == [m.content for m in after]
    assert history[-1]["content"] == "Anything else to add?"


def test_the_summary_is_reused_then_extended_when_more_turns_fall_out(
    alice, session, ai, queued, budget
):
    long_chat(session, range(12))
    reply_to(session, "Anything else to add?")
    session.refresh_from_db()
    first, first_through = session.summary, session.summary_through_seq

    before = model_calls(ai)
    reply = reply_to(session, "Thanks, anything else?")
    assert reply.status == Message.Status.COMPLETE, reply.error
    assert model_calls(ai) - before == 1  # the reply only
    session.refresh_from_db()
    assert (session.summary, session.summary_through_seq) == (first, first_through)
    assert summaries(session).count() == 1

    # Extended, not made again: a summary the model can only have taken from the stored one.
    ChatSession.objects.filter(pk=session.pk).update(summary=first.replace("Question 0?", "Q0?"))
    long_chat(session, range(12, 18))
    before = model_calls(ai)
    reply = reply_to(session, "And now?")
    assert reply.status == Message.Status.COMPLETE, reply.error
    assert model_calls(ai) - before == 2
    assert summaries(session).count() == 2
    session.refresh_from_db()
    assert session.summary_through_seq > first_through
    questions = questions_through(session, session.summary_through_seq)
    assert asked(session.summary) == ["Q0?", *questions[1:]]
    assert "Question 16?" in session.summary
    sent = conversation(reply=reply)
    assert count_messages(history_of(sent, session), model="gpt-4o-mini") <= budget


def test_a_failed_summary_falls_back_to_first_lines_with_a_warning(
    alice, session, ai, queued, budget, caplog
):
    long_chat(session, range(12))
    _question, reply = services.message_send(session=session, text="And now?")
    ai.fault("openai", 500, times=2)  # every attempt of the summary call
    with caplog.at_level(logging.WARNING, logger="chat.history"):
        sent = conversation(reply=reply)
    assert "summarising older turns failed" in caplog.text
    history = history_of(sent, session)
    note = history[0]["content"]
    assert note.startswith(CONDENSED_HEAD) and "- User: Question" in note
    assert "- Assistant: Answer" in note
    assert count_messages(history, model="gpt-4o-mini") <= budget
    assert history[-1]["content"] == "And now?"
    session.refresh_from_db()
    assert session.summary == "" and session.summary_through_seq == 0
    assert [r.outcome for r in summaries(session)] != ["ok"]

    # The next reply tries again.
    assistant_sent = conversation(reply=reply)
    assert history_of(assistant_sent, session)[0]["content"].startswith(SUMMARY_HEAD)


def test_a_short_chat_goes_whole_without_a_summary(alice, session, ai, queued, budget):
    long_chat(session, range(2))
    before = model_calls(ai)
    _question, reply = services.message_send(session=session, text="And now?")
    sent = conversation(reply=reply)
    assert model_calls(ai) == before
    assert not any(str(m["content"]).startswith(SUMMARY_HEAD) for m in sent)
    assert len(history_of(sent, session)) == 5


def test_a_reply_still_being_written_is_not_summarised(alice, session, ai, queued, budget):
    long_chat(session, range(12))
    writing = session.messages.get(content__startswith="Answer 9.")
    Message.objects.filter(pk=writing.pk).update(status=Message.Status.STREAMING)
    _question, reply = services.message_send(session=session, text="And now?")
    sent = conversation(reply=reply)
    session.refresh_from_db()
    assert 0 < session.summary_through_seq < writing.seq
    assert "Answer 9." not in session.summary
    assert count_messages(history_of(sent, session), model="gpt-4o-mini") <= budget
