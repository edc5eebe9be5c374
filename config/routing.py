"""Every WebSocket route of the product, in one list (each app adds its own)."""

from __future__ import annotations

from django.urls import path

from chat.consumers import ChatConsumer
from core.consumers import NotificationsConsumer
from jobs.consumers import JobConsumer
from sheets.consumers import SheetConsumer, SheetsListConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationsConsumer.as_asgi()),
    path("ws/sheets/", SheetsListConsumer.as_asgi()),
    path("ws/sheets/<int:sheet_id>/", SheetConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/chat/<int:session_id>/", ChatConsumer.as_asgi()),
]
