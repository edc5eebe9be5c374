"""The base WebSocket consumer: anonymous sockets are refused before anything is joined.

Messages go to the browser as HTML fragments, which the htmx ws extension swaps out of band by id.

On connect the consumer sends `core/ws_status.html` (state "open"), which replaces the "live"
indicator in the top bar; `static/js/app.js` turns it to "reconnecting…" when the socket closes.
Pushes sent while a socket was down are lost, so after a reconnect the page catches up: app.js
dispatches `ws:reconnected` on <body>, and a region that shows live data re-fetches itself with

    <div id="rows" hx-get="{{ request.get_full_path }}" hx-trigger="ws:reconnected from:body">

While Redis is down or restarting the channel layer raises; the consumer then closes the socket
with CLOSE_TRY_AGAIN_LATER, which app.js answers by reconnecting with backoff, and logs one
warning line (no traceback: an outage is expected, not a bug).
"""

from __future__ import annotations

import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Close code for "not logged in" (4000-4999 are free for applications).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# "Try again later". RFC 6455's 1013 would do, but daphne (autobahn) sends only 1000 and
# 3000-4999, and the ws extension retries only 1006 and 1011-1013: static/js/app.js retries this.
CLOSE_TRY_AGAIN_LATER = 4013


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


class AuthenticatedConsumer(AsyncWebsocketConsumer):
    """Accepts only logged-in users, then joins the groups `get_groups()` names."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except RedisError as exc:
            logger.warning(
                "Closed the WebSocket %s: the channel layer cannot reach Redis (%s: %s); "
                "the browser reconnects on its own",
                scope.get("path"),
                type(exc).__name__,
                exc,
            )
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.joined: list[str] = await self.get_groups()
        if self.joined is None:  # the subclass refused (no access to that object)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # The "live" marker: the page (and browser tests) wait on it before expecting pushes.
        await self.send(
            text_data=render_to_string("core/ws_status.html", {"state": "open"}).strip()
        )

    async def disconnect(self, code: int) -> None:
        try:
            for group in getattr(self, "joined", None) or []:
                await self.channel_layer.group_discard(group, self.channel_name)
        except RedisError:
            # Membership expires on its own (channels-redis's group_expiry); nothing to undo.
            pass

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
