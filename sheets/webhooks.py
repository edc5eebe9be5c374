"""Smartsheet webhooks: registering one per mirrored sheet, and judging the callbacks they send.

A callback is skinny (no data), so all the receiver does is decide whether to trust it and then
ask for a debounced incremental sync; the sync fetches what changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from smartsheet.exceptions import ApiError

from core.ratelimit import redis_client
from sheets import client
from sheets.models import Sheet, WebhookRejection
from sheets.sync import sheet_sync_request

logger = logging.getLogger(__name__)

ENABLED = "ENABLED"


@dataclass
class WebhookAnswer:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def _reject(reason: str, webhook_id: int | None, body: bytes, remote_addr: str | None):
    record = WebhookRejection.objects.create(
        reason=reason,
        webhook_id=webhook_id,
        remote_addr=remote_addr or None,
        body_excerpt=body[:500].decode("utf-8", "replace"),
    )
    # A flood of forged callbacks must not fill the database: keep the newest ones only.
    WebhookRejection.objects.filter(pk__lte=record.pk - settings.WEBHOOK_REJECTIONS_KEPT).delete()
    logger.warning(
        "webhook callback refused: %s (webhook %s from %s)", reason, webhook_id, remote_addr
    )
    return WebhookAnswer(403, {"error": "refused"})


def signature_valid(*, secret: str, body: bytes, signature: str | None) -> bool:
    """HMAC-SHA256 of the raw body, hex, compared case-insensitively in constant time."""
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace"))


def webhook_callback_receive(
    *, body: bytes, challenge: str | None, signature: str | None, remote_addr: str | None
) -> WebhookAnswer:
    """Judge one callback; what it returns is what the view answers."""
    try:
        payload = json.loads(body)
    except ValueError:
        return WebhookAnswer(400, {"error": "the body is not JSON"})
    if not isinstance(payload, dict):
        return WebhookAnswer(400, {"error": "the body must be a JSON object"})
    webhook_id = payload.get("webhookId")
    if type(webhook_id) is not int:
        return WebhookAnswer(400, {"error": "webhookId (a number) is missing"})
    events = payload.get("events")
    if events is not None and not isinstance(events, list):
        return WebhookAnswer(400, {"error": "events must be a list"})
    challenge = challenge or payload.get("challenge")

    sheet = (
        Sheet.objects.filter(webhook_id=webhook_id)
        .only("pk", "webhook_shared_secret", "webhook_status")
        .first()
    )
    if sheet is None:
        return _reject(WebhookRejection.Reason.UNKNOWN_WEBHOOK, webhook_id, body, remote_addr)

    if challenge is not None:
        # Whether Smartsheet signs challenges is unconfirmed: a signed one must verify; an
        # unsigned one is answered, since echoing it proves only that we are the subscriber.
        if signature and not signature_valid(
            secret=sheet.webhook_shared_secret, body=body, signature=signature
        ):
            return _reject(WebhookRejection.Reason.BAD_SIGNATURE, webhook_id, body, remote_addr)
        value = str(challenge)
        return WebhookAnswer(
            200, {"smartsheetHookResponse": value}, {"Smartsheet-Hook-Response": value}
        )

    if not signature_valid(secret=sheet.webhook_shared_secret, body=body, signature=signature):
        return _reject(WebhookRejection.Reason.BAD_SIGNATURE, webhook_id, body, remote_addr)

    nonce = payload.get("nonce")
    if nonce is not None:
        key = f"{settings.REDIS_PREFIX}:sheets:webhook-nonce:{webhook_id}:{nonce}"
        if not redis_client().set(key, "1", nx=True, ex=settings.WEBHOOK_NONCE_TTL):
            logger.info("webhook %s: replayed nonce %s ignored", webhook_id, nonce)
            return WebhookAnswer(200, {"status": "replay ignored"})

    new_status = payload.get("newWebhookStatus")
    if new_status is not None:
        Sheet.objects.filter(pk=sheet.pk).update(webhook_status=str(new_status)[:40])
        logger.warning("webhook %s of sheet %s is now %s", webhook_id, sheet.pk, new_status)
        return WebhookAnswer(200, {"status": "noted"})

    if events and all(
        isinstance(e, dict) and e.get("changeAgent") == settings.SMARTSHEET_CHANGE_AGENT
        for e in events
    ):
        # Our own writes (grid, jobs, chat): the mirror got them when they were made.
        return WebhookAnswer(200, {"status": "own change"})
    sheet_sync_request(sheet_id=sheet.pk)
    return WebhookAnswer(200, {"status": "sync scheduled"})


# --- Registration -----------------------------------------------------------------------------


@dataclass
class WebhookReport:
    sheet_id: int
    webhook_id: int | None
    status: str
    action: str  # "created", "enabled", "ok", "repaired", "failed: …"


def sheet_webhook_ensure(
    *, sheet: Sheet, callback_url: str, known: dict[int, object]
) -> WebhookReport:
    """Make sure one enabled webhook watches `sheet` and calls `callback_url`.

    `known` maps webhook id → the SDK Webhook from one listing (so N sheets cost one list call).
    A webhook with another callback URL or lost secret is replaced; a disabled one re-enabled
    (Smartsheet then re-runs the challenge, which needs the receiver to be reachable).
    """
    hook = known.get(sheet.webhook_id) if sheet.webhook_id else None
    action = "ok"
    if hook is not None and (hook.callback_url != callback_url or not sheet.webhook_shared_secret):
        client.webhook_delete(webhook_id=int(known.pop(int(hook.id)).id))
        hook, action = None, "repaired"
    if hook is None:
        # Another webhook of ours for this sheet whose secret we lost: remove it, not pile up.
        for other_id, other in list(known.items()):
            if int(other.scope_object_id or 0) == sheet.pk and other.callback_url == callback_url:
                client.webhook_delete(webhook_id=other_id)
                del known[other_id]
        hook = client.webhook_create(
            sheet_id=sheet.pk, name=f"workbench sheet {sheet.pk}", callback_url=callback_url
        )
        action = "created" if action == "ok" else action
        # Saved before enabling: the challenge arrives while the PUT below is in flight.
        Sheet.objects.filter(pk=sheet.pk).update(
            webhook_id=int(hook.id),
            webhook_shared_secret=hook.shared_secret,
            webhook_status=str(hook.status),
        )
    status = str(hook.status)
    if status != ENABLED or not hook.enabled:
        try:
            hook = client.webhook_update(webhook_id=int(hook.id), enabled=True)
            status = str(hook.status)
            action = "enabled" if action == "ok" else action
        except ApiError as exc:
            action = f"failed: {exc}"
    if status != ENABLED and not action.startswith("failed"):
        action = f"failed: Smartsheet left it {status} (is {callback_url} reachable from it?)"
    Sheet.objects.filter(pk=sheet.pk).update(webhook_id=int(hook.id), webhook_status=status)
    return WebhookReport(sheet_id=sheet.pk, webhook_id=int(hook.id), status=status, action=action)


def webhooks_register(*, callback_url: str) -> list[WebhookReport]:
    """Create, enable or repair one webhook per mirrored sheet."""
    known = {int(h.id): h for h in client.webhooks_list()}
    return [
        sheet_webhook_ensure(sheet=sheet, callback_url=callback_url, known=known)
        for sheet in Sheet.objects.all()
    ]
