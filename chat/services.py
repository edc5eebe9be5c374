"""Writes of the chat: sessions, messages (ordered by the database), Stop/Retry, and the person's
decision on a proposed change (Apply runs the sheets/jobs services; Discard changes nothing).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chat.events import change_set_changed_send, message_changed_send
from chat.models import ChangeSet, ChatSession, Message
from chat.tools import Outcome, ToolContext, ToolError, tool_apply
from sheets.models import Sheet

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
MAX_MESSAGE_CHARS = 20_000


class ChatInvalid(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def session_create(*, owner, sheet: Sheet | None = None, title: str = "") -> ChatSession:
    session = ChatSession(owner=owner, sheet=sheet, title=title.strip()[:200])
    session.full_clean()
    session.save()
    return session


def session_rename(*, session: ChatSession, title: str) -> ChatSession:
    title = " ".join(title.split())[:200]
    if not title:
        raise ChatInvalid("Give the chat a title (any text).")
    session.title = title
    session.save(update_fields=["title"])
    return session


def session_delete(*, session: ChatSession) -> None:
    session.delete()


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def message_add(*, session: ChatSession, role: str, **fields: Any) -> Message:
    """A message with the session's next seq. The session row is locked while the counter is
    read and bumped, so concurrent senders get distinct, increasing seqs in commit order."""
    with transaction.atomic():
        locked = ChatSession.objects.select_for_update().get(pk=session.pk)
        seq = locked.next_seq
        ChatSession.objects.filter(pk=session.pk).update(
            next_seq=F("next_seq") + 1, updated_at=timezone.now()
        )
        message = Message.objects.create(session_id=session.pk, seq=seq, role=role, **fields)
        message_changed_send(session_id=session.pk, message_id=message.pk)
    return message


def message_send(*, session: ChatSession, text: str) -> tuple[Message, Message]:
    """The person's message and the assistant's reply (pending), then the reply is queued."""
    text = text.strip()
    if not text:
        raise ChatInvalid("Write a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ChatInvalid(f"Messages are at most {MAX_MESSAGE_CHARS:,} characters; shorten it.")
    with transaction.atomic():
        question = message_add(session=session, role=Message.Role.USER, content=text)
        reply = message_add(
            session=session, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
        )
        if not session.title:
            ChatSession.objects.filter(pk=session.pk, title="").update(title=_title_from(text))
        reply_enqueue(message=reply)
    return question, reply


def reply_enqueue(*, message: Message) -> None:
    from chat.tasks import assistant_reply_task

    transaction.on_commit(lambda: assistant_reply_task.delay(message.pk))


def message_stop(*, message: Message) -> Message:
    """Ask the running reply to stop; it keeps what it has written so far."""
    if not message.working:
        return message
    message.stop_requested = True
    message.save(update_fields=["stop_requested", "updated_at"])
    if message.status == Message.Status.PENDING:
        # Nothing is running yet: stop it here (the task finds it finished and does nothing).
        Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
            status=Message.Status.STOPPED
        )
        message.refresh_from_db()
        message_changed_send(session_id=message.session_id, message_id=message.pk)
    return message


def message_retry(*, message: Message) -> Message:
    """Write a failed or stopped reply again, from the same point of the conversation."""
    if message.role != Message.Role.ASSISTANT or message.status not in (
        Message.Status.ERROR,
        Message.Status.STOPPED,
    ):
        raise ChatInvalid("Only a failed or stopped reply can be retried.")
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, status=message.status).update(
            status=Message.Status.PENDING,
            content="",
            error="",
            stop_requested=False,
            tool_calls=[],
            tool_results=[],
            updated_at=timezone.now(),
        )
        if updated:
            message.change_sets.filter(status=ChangeSet.Status.PROPOSED).update(
                status=ChangeSet.Status.DISCARDED, decided_at=timezone.now()
            )
            reply_enqueue(message=message)
            message_changed_send(session_id=message.session_id, message_id=message.pk)
    message.refresh_from_db()
    return message


# --- proposed changes --------------------------------------------------------------------------


def _decided(change_set: ChangeSet, status: str, outcome: Outcome | None) -> ChangeSet:
    change_set.status = status
    change_set.decided_at = timezone.now()
    if outcome is not None:
        change_set.outcome = {"status": outcome.status, **outcome.detail}
        change_set.outcome_text = outcome.text
    change_set.save(update_fields=["status", "decided_at", "outcome", "outcome_text"])
    change_set_changed_send(session_id=change_set.session_id, change_set_id=change_set.pk)
    return change_set


def _claim(change_set: ChangeSet, status: str) -> bool:
    """Only one decision per change set, even from two tabs at once."""
    return bool(
        ChangeSet.objects.filter(pk=change_set.pk, status=ChangeSet.Status.PROPOSED).update(
            status=status, decided_at=timezone.now()
        )
    )


def change_set_apply(*, change_set: ChangeSet, user) -> ChangeSet:
    """Carry out a proposed change through the sheets/jobs services, then tell the assistant."""
    if not _claim(change_set, ChangeSet.Status.APPLIED):
        raise ChatInvalid("This change was decided already.")
    try:
        outcome = tool_apply(
            name=change_set.tool, preview=change_set.preview, context=ToolContext(user=user)
        )
    except ToolError as exc:
        outcome = Outcome(status="failed", text=exc.message)
    except Exception:
        logger.exception("applying change set %s failed", change_set.pk)
        outcome = Outcome(
            status="failed",
            text="Something went wrong while applying this change; nothing more was written. "
            "Try again, or make the change in the grid.",
        )
    status = {
        "applied": ChangeSet.Status.APPLIED,
        "partial": ChangeSet.Status.PARTIAL,
        "conflict": ChangeSet.Status.CONFLICT,
    }.get(outcome.status, ChangeSet.Status.FAILED)
    with transaction.atomic():
        _decided(change_set, status, outcome)
        message_add(
            session=change_set.session,
            role=Message.Role.EVENT,
            content=f"The user pressed Apply on “{change_set.summary}”: {outcome.text}",
        )
    return change_set


def change_set_discard(*, change_set: ChangeSet) -> ChangeSet:
    if not _claim(change_set, ChangeSet.Status.DISCARDED):
        raise ChatInvalid("This change was decided already.")
    with transaction.atomic():
        _decided(change_set, ChangeSet.Status.DISCARDED, None)
        message_add(
            session=change_set.session,
            role=Message.Role.EVENT,
            content=f"The user discarded “{change_set.summary}”; nothing was changed.",
        )
    return change_set
