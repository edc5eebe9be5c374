"""The base WebSocket consumer: anonymous sockets are refused before anything is joined.

Messages go to the browser as HTML fragments, which the htmx ws extension swaps out of band by id.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

# Close code for "not logged in" (4000-4999 are free for applications).
CLOSE_UNAUTHENTICATED = 4401


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


class AuthenticatedConsumer(AsyncWebsocketConsumer):
    """Accepts only logged-in users, then joins the groups `get_groups()` names."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.joined: list[str] = await self.get_groups()
        if self.joined is None:  # the subclass refused (no access to that object)
            await self.close(code=4403)
            return
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # A marker the page (and browser tests) can wait on before expecting pushes.
        await self.send(text_data='<span id="ws-status" data-state="open" hidden></span>')

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", None) or []:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def get_groups(self) -> list[str] | None:
        return []


class NotificationsConsumer(AuthenticatedConsumer):
    """Per-user toasts pushed by services: group_send(user_group(id), {"type": "notify", ...})."""

    async def get_groups(self) -> list[str]:
        return [user_group(self.scope["user"].pk)]

    async def notify(self, event: dict) -> None:
        html = render_to_string(
            "core/toast.html", {"message": event["message"], "level": event.get("level", "info")}
        )
        await self.send(text_data=html)
