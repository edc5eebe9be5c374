"""Smartsheet webhooks: registering one per mirrored sheet (the receiver is sheets/receiver.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from smartsheet.exceptions import ApiError

from sheets import client
from sheets.models import Sheet

logger = logging.getLogger(__name__)

ENABLED = "ENABLED"


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
            logger.warning("webhook %s could not be enabled: %s", hook.id, exc)
            action = f"failed: {_refusal_sentence(exc)}"
    if status != ENABLED and not action.startswith("failed"):
        action = f"failed: Smartsheet left it {status} (is {callback_url} reachable from it?)"
    Sheet.objects.filter(pk=sheet.pk).update(webhook_id=int(hook.id), webhook_status=status)
    return WebhookReport(sheet_id=sheet.pk, webhook_id=int(hook.id), status=status, action=action)


def webhooks_register(*, callback_url: str) -> list[WebhookReport]:
    """Create, enable or repair one webhook per mirrored sheet (sheets gone are skipped).

    Each sheet is handled on its own: one that fails is reported ("failed: …", the detail in
    the log) and the others go on.
    """
    known = {int(h.id): h for h in client.webhooks_list()}
    reports = []
    for sheet in Sheet.objects.exclude(sync_state=Sheet.SyncState.GONE):
        try:
            report = sheet_webhook_ensure(sheet=sheet, callback_url=callback_url, known=known)
        except (client.SmartsheetUnavailable, ApiError) as exc:
            logger.warning("webhook of sheet %s could not be registered: %s", sheet.pk, exc)
            report = WebhookReport(
                sheet_id=sheet.pk,
                webhook_id=sheet.webhook_id,
                status=sheet.webhook_status or "none",
                action=f"failed: {_refusal_sentence(exc)}",
            )
        reports.append(report)
    return reports


def _refusal_sentence(exc: Exception) -> str:
    if isinstance(exc, client.SmartsheetUnavailable):
        return "Smartsheet could not be reached; run the command again later"
    result = getattr(exc.error, "result", None)
    code = getattr(result, "error_code", None)
    message = getattr(result, "message", None) or "refused"
    if code in (1006, 1151):
        return f"Smartsheet no longer has this sheet (error {code}); `sync_sheets --prune`"
    return f"Smartsheet refused it (error {code}: {message})"
