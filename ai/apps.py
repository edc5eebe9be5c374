from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class AiConfig(AppConfig):
    """Everything Azure OpenAI: client, limiter, retries, breaker, fallback, tokens, usage."""

    name = "ai"
    verbose_name = "AI"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from ai import checks
        from ai.tokens import encoding_name
        from core.health import register_check

        # Token counting needs each deployment's base model; a wrong one stops the start.
        for name, spec in settings.AZURE_OPENAI_DEPLOYMENTS.items():
            try:
                encoding_name(spec["model"])
            except ValueError as exc:
                raise ImproperlyConfigured(f"AZURE_OPENAI_DEPLOYMENTS[{name!r}]: {exc}") from exc
        register_check("azure_openai", checks.readiness_check, critical=False)
        worker_ready.connect(checks.on_worker_ready, dispatch_uid="ai.checks.on_worker_ready")
