from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def workbench(request: HttpRequest) -> dict:
    return {
        "sandbox_mode": settings.SANDBOX_MODE,
        "smartsheet_sandbox": settings.SMARTSHEET_SANDBOX,
        "azure_openai_sandbox": settings.AZURE_OPENAI_SANDBOX,
    }
