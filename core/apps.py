from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces: home page, health, the base WebSocket consumer, the demo user."""

    name = "core"
