"""Reads of the chat: a person's sessions (searchable) and a conversation ready to render."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from chat.markdown import markdown_html
from chat.models import ChangeSet, ChatSession, Message

SESSIONS_SHOWN = 200


def sessions_of(*, user, search: str = "") -> QuerySet[ChatSession]:
    """The person's chats, newest activity first; `search` matches titles and message text."""
    sessions = ChatSession.objects.filter(owner=user, archived=False).select_related("sheet")
    search = search.strip()
    if search:
        matching = Message.objects.filter(session__owner=user, content__icontains=search)
        sessions = sessions.filter(
            Q(title__icontains=search) | Q(pk__in=matching.values("session_id"))
        )
    return sessions.order_by("-updated_at", "-pk")


def session_for_owner(*, user, session_id: int) -> ChatSession:
    """The session if `user` owns it; a 404 otherwise (others' sessions do not exist for them)."""
    return get_object_or_404(ChatSession.objects.select_related("sheet"), pk=session_id, owner=user)


def _prepared(message: Message) -> Message:
    message.html = markdown_html(message.content) if message.role == "assistant" else ""
    for change_set in message.change_sets.all():
        _card(change_set)
    return message


def _card(change_set: ChangeSet) -> ChangeSet:
    change_set.blocked = (change_set.outcome or {}).get("blocked", "")
    change_set.can_apply = change_set.open and not change_set.blocked
    return change_set


def _with_cards(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.prefetch_related(
        Prefetch("change_sets", queryset=ChangeSet.objects.select_related("sheet"))
    )


def conversation_of(*, session: ChatSession) -> list[Message]:
    return [_prepared(m) for m in _with_cards(session.messages.order_by("seq"))]


def message_view(*, session_id: int, message_id: int) -> Message | None:
    message = _with_cards(Message.objects.filter(session_id=session_id, pk=message_id)).first()
    return _prepared(message) if message else None


def change_set_view(*, session_id: int, change_set_id: int) -> ChangeSet | None:
    change_set = (
        ChangeSet.objects.select_related("sheet")
        .filter(session_id=session_id, pk=change_set_id)
        .first()
    )
    return _card(change_set) if change_set else None
