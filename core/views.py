from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import readiness

logger = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html")


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and serving; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every critical dependency answers, else 503 naming the ones that are down."""
    checks, down = readiness()
    body = {"status": "ok" if not down else "unavailable", "down": down, "checks": checks}
    response = JsonResponse(body, status=503 if down else 200)
    if down:
        # An expected answer while a dependency is down, not a server error: one warning
        # naming it instead of django.request's ERROR line for every 5xx.
        logger.warning("not ready: %s down", ", ".join(down))
        response._has_been_logged = True  # what django.utils.log.log_response looks for
    return response


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's, say)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
