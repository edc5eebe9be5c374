from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sheets.receiver import webhook_callback_receive
from sheets.selectors import sheets_visible_to

logger = logging.getLogger(__name__)


def index(request: HttpRequest) -> HttpResponse:
    sheets = sheets_visible_to(request.user).order_by("name", "pk")
    return render(request, "sheets/index.html", {"sheets": sheets})


@csrf_exempt
@login_not_required
@require_POST
def smartsheet_webhook(request: HttpRequest) -> HttpResponse:
    """Smartsheet's callbacks: challenges, change events and status changes (signed)."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    try:
        body = b"" if declared > limit else request.body
    except RequestDataTooBig:
        body = None
    if body is None or declared > limit or len(body) > limit:
        logger.warning("webhook callback over %d bytes refused", limit)
        return JsonResponse({"error": f"the body is over {limit} bytes"}, status=413)
    answer = webhook_callback_receive(
        body=body,
        challenge=request.headers.get("Smartsheet-Hook-Challenge"),
        signature=request.headers.get("Smartsheet-Hmac-SHA256"),
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
