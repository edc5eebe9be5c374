"""The conversation's socket: replies as they are written, messages and change cards as they change.

Only the session's owner connects; anyone else's socket is closed with CLOSE_NOT_FOUND, the
socket's 404, whether the session exists or not. Frames are JSON (see static/js/chat.js):
    {"type": "delta", "id": message id, "html": the reply so far, "length": its text length}
    {"type": "html", "html": fragments to put in place of the elements with the same ids}
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from chat.events import session_group
from chat.models import ChatSession
from chat.selectors import change_set_view, message_view
from core.consumers import AuthenticatedConsumer

CLOSE_NOT_FOUND = 4404


def _off_the_shared_thread(func):
    return database_sync_to_async(func, thread_sensitive=False)


class ChatConsumer(AuthenticatedConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        if user is not None and user.is_authenticated and not await self._owned(user):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await super().connect()

    @database_sync_to_async
    def _owned(self, user) -> bool:
        return ChatSession.objects.filter(pk=self.session_id, owner=user).exists()

    async def get_groups(self) -> list[str]:
        return [session_group(self.session_id)]

    async def chat_delta(self, event: dict) -> None:
        await self.send(
            text_data=json.dumps(
                {
                    "type": "delta",
                    "id": event["message_id"],
                    "html": event["html"],
                    "length": event["length"],
                }
            )
        )

    async def chat_message(self, event: dict) -> None:
        html = await self._render_message(event["message_id"])
        if html:
            await self.send(text_data=json.dumps({"type": "html", "html": html}))

    async def chat_change_set(self, event: dict) -> None:
        html = await self._render_change_set(event["change_set_id"])
        if html:
            await self.send(text_data=json.dumps({"type": "html", "html": html}))

    # Not thread-sensitive: renders run beside the views' shared thread instead of queueing
    # behind them (and the first words of a reply behind the renders).
    @_off_the_shared_thread
    def _render_message(self, message_id: int) -> str:
        message = message_view(session_id=self.session_id, message_id=message_id)
        if message is None:
            return ""
        return render_to_string(
            "chat/session.html#message", {"message": message, "user": self.scope["user"]}
        )

    @_off_the_shared_thread
    def _render_change_set(self, change_set_id: int) -> str:
        change_set = change_set_view(session_id=self.session_id, change_set_id=change_set_id)
        if change_set is None:
            return ""
        return render_to_string(
            "chat/session.html#change_set",
            {"change_set": change_set, "user": self.scope["user"]},
        )
