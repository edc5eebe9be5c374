"""What a conversation announces to its open pages: one group per session.

Messages (group_send; the consumer method is the type with "." → "_"):
    {"type": "chat.delta", "message_id": int, "html": str, "length": int}
        the reply so far, rendered (Markdown, sanitised); `length` is the text's length, so a
        page keeps the longest it has seen and a page opened mid-reply catches up at once;
    {"type": "chat.message", "message_id": int}
        a message was added or changed state: pages re-render it from the database;
    {"type": "chat.change_set", "change_set_id": int}
        a proposed change appeared or was decided: pages re-render its card.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def session_group(session_id: int) -> str:
    return f"chat.{session_id}"


def _send(session_id: int, message: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(session_group(session_id), message)
    except RedisError as exc:
        # Pages catch up from the database when their socket comes back.
        logger.warning("chat event for session %s not sent (Redis: %s)", session_id, exc)


def delta_send(*, session_id: int, message_id: int, html: str, length: int) -> None:
    _send(
        session_id,
        {"type": "chat.delta", "message_id": message_id, "html": html, "length": length},
    )


def message_changed_send(*, session_id: int, message_id: int) -> None:
    transaction.on_commit(
        lambda: _send(session_id, {"type": "chat.message", "message_id": message_id})
    )


def change_set_changed_send(*, session_id: int, change_set_id: int) -> None:
    transaction.on_commit(
        lambda: _send(session_id, {"type": "chat.change_set", "change_set_id": change_set_id})
    )
