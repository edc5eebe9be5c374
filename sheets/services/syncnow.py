"""The sheets list's "Sync now": queue a sync of one sheet for a person with the edit grant."""

from __future__ import annotations

import math

from redis.exceptions import RedisError

from core.breakers import seconds_until_trial
from sheets import client
from sheets.client import SmartsheetUnavailable
from sheets.services.cells import sheet_for_edit
from sheets.sync import sheet_sync_request


def sheet_sync_queue(*, user, sheet_id: int) -> bool:
    """Queue a sync now; False when one is already queued (it will fetch the same changes).

    PermissionDenied for viewers; SmartsheetUnavailable, with a sentence for the page, while
    Smartsheet's breaker is open (the sync would only fail) or Redis is down.
    """
    sheet = sheet_for_edit(user=user, sheet_id=sheet_id)
    try:
        wait = seconds_until_trial(client.smartsheet_breaker())
    except RedisError:
        wait = 0.0  # sheet_sync_request below says Redis is down, in its own words
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        raise SmartsheetUnavailable(
            f"Smartsheet is not answering right now. Try again in {minutes} "
            f"minute{'s' if minutes > 1 else ''}; the mirror keeps its last copy meanwhile."
        )
    try:
        return sheet_sync_request(sheet_id=sheet.pk, countdown=0)
    except SmartsheetUnavailable as exc:
        raise SmartsheetUnavailable(
            "The sync could not be queued (the task queue is unreachable). Try again in a minute."
        ) from exc
