from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces: home page, health, the base WebSocket consumer, the demo user."""

    name = "core"

    def ready(self) -> None:
        from core import login_throttle  # noqa: F401 (connects its signal receivers)
