"""The poller beat runs every SHEETS_POLL_INTERVAL: what keeps the mirror from going quietly stale.

Each round it
1. checks the webhooks with one list call: one Smartsheet disabled (after failed callbacks, say
   while Redis was down) or lost is re-enabled or recreated, and its sheet is polled meanwhile;
2. takes up syncs whose worker died: a sheet left "syncing" whose lock has expired (the lock
   outlives its holder by SHEETS_SYNC_LOCK_TTL at most) gets a full sync. Celery's acks_late
   does not cover this in time: with the Redis broker a killed worker's message waits in the
   "unacked" set until the visibility timeout (an hour by default) before another worker takes
   it back; shortening that timeout would redeliver long syncs that are still running. Beat
   also runs this step alone every SHEETS_RESUME_INTERVAL (`syncs_resume`);
3. requests a sync, one task per sheet, of every sheet without a live webhook, of those a
   callback asked to sync when the request could not be queued (Redis was down:
   `sheets_needing_sync`), and of the others once per SHEETS_SAFETY_POLL_INTERVAL (real webhooks
   arrive late or not at all). An unchanged sheet costs one small call.
Sheets gone from Smartsheet are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from smartsheet.exceptions import ApiError

from sheets import client
from sheets.locks import sheet_sync_locked
from sheets.models import Sheet
from sheets.selectors import sheets_needing_sync
from sheets.sync import sheet_sync_request
from sheets.webhooks import sheet_webhook_ensure

logger = logging.getLogger(__name__)

ENABLED = "ENABLED"
# Statuses this app can undo itself: re-enabling re-runs the challenge.
_REPAIRABLE = frozenset({"DISABLED_CALLBACK_FAILED", "DISABLED_VERIFICATION_FAILED"})


@dataclass
class PollRound:
    requested: list[int] = field(default_factory=list)  # syncs asked for
    resumed: list[int] = field(default_factory=list)  # interrupted syncs taken up again
    webhooks_repaired: list[int] = field(default_factory=list)  # sheets whose webhook was fixed


def sheets_poll() -> PollRound:
    """One poll round (see the module docstring); requests syncs, never syncs itself."""
    done = PollRound()
    polled = Sheet.objects.exclude(sync_state=Sheet.SyncState.GONE)
    if polled.exclude(webhook_id=None).exists():
        _webhooks_check(done)
    safety_due = timezone.now() - timedelta(seconds=settings.SHEETS_SAFETY_POLL_INTERVAL)
    asked = set(sheets_needing_sync().values_list("pk", flat=True))
    done.resumed = syncs_resume()
    for sheet_id, state, status, synced_at in polled.values_list(
        "pk", "sync_state", "webhook_status", "synced_at"
    ):
        if state == Sheet.SyncState.SYNCING:
            continue
        due = status != ENABLED or synced_at is None or synced_at < safety_due or sheet_id in asked
        if due and sheet_sync_request(sheet_id=sheet_id, countdown=0):
            done.requested.append(sheet_id)
    return done


def syncs_resume() -> list[int]:
    """Request a full sync of every sheet left "syncing" by a holder that died (its lock has
    expired); returns their ids. Beat runs this every SHEETS_RESUME_INTERVAL on its own, so an
    interrupted sync is taken up within SHEETS_SYNC_LOCK_TTL + SHEETS_RESUME_INTERVAL seconds;
    it costs one query and a Redis look-up per syncing sheet, no Smartsheet call."""
    resumed = []
    for sheet_id in Sheet.objects.filter(sync_state=Sheet.SyncState.SYNCING).values_list(
        "pk", flat=True
    ):
        # Re-read after the lock check: a sync that just ended has released its lock too.
        if not sheet_sync_locked(sheet_id=sheet_id) and _still_syncing(sheet_id):
            logger.warning("sheet %s was left mid-sync; syncing it in full again", sheet_id)
            if sheet_sync_request(sheet_id=sheet_id, countdown=0, full=True):
                resumed.append(sheet_id)
    return resumed


def _still_syncing(sheet_id: int) -> bool:
    return Sheet.objects.filter(pk=sheet_id, sync_state=Sheet.SyncState.SYNCING).exists()


def _webhooks_check(done: PollRound) -> None:
    """Record each webhook's status as Smartsheet has it, and repair the ones it disabled."""
    try:
        known = {int(h.id): h for h in client.webhooks_list()}
    except (client.SmartsheetUnavailable, ApiError) as exc:
        logger.warning("could not check the webhooks this round: %s", exc)
        return
    hooked = Sheet.objects.exclude(webhook_id=None).exclude(sync_state=Sheet.SyncState.GONE)
    for sheet in hooked:
        hook = known.get(sheet.webhook_id)
        status = str(hook.status) if hook is not None else "DELETED"
        if status == ENABLED:
            if sheet.webhook_status != ENABLED:
                Sheet.objects.filter(pk=sheet.pk).update(webhook_status=status)
            continue
        if status != sheet.webhook_status:
            logger.warning("webhook of sheet %s is %s in Smartsheet", sheet.pk, status)
        # Until it works again the sheet is polled like one without a webhook.
        Sheet.objects.filter(pk=sheet.pk).update(webhook_status=status)
        if status not in _REPAIRABLE and hook is not None:
            continue
        try:
            report = sheet_webhook_ensure(
                sheet=sheet, callback_url=settings.WEBHOOK_CALLBACK_URL, known=known
            )
        except (client.SmartsheetUnavailable, ApiError) as exc:
            logger.warning("could not repair the webhook of sheet %s: %s", sheet.pk, exc)
            continue
        if report.status == ENABLED:
            done.webhooks_repaired.append(sheet.pk)
            # Changes made while it was off were never announced: catch up now.
            if sheet_sync_request(sheet_id=sheet.pk, countdown=0):
                done.requested.append(sheet.pk)
        else:
            logger.warning("webhook of sheet %s is still %s: %s", sheet.pk, status, report.action)
