"""What the mirror announces to open grids, and where: one group per sheet.

Message (sent with `group_send`, so a consumer method `sheet_changed` receives it):
    {"type": "sheet.changed", "sheet_id": int, "version": int | None,
     "changed": [row ids], "added": [row ids], "deleted": [row ids], "reload": bool}
`reload` is true when the columns changed or too many rows changed to list: re-render the grid.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Beyond this many row ids a message says "reload" instead of listing them.
MAX_LISTED_IDS = 1000


def sheet_group(sheet_id: int) -> str:
    return f"sheet.{sheet_id}"


def sheet_changed_send(
    *,
    sheet_id: int,
    version: int | None,
    changed: list[int],
    added: list[int],
    deleted: list[int],
    reload: bool = False,
) -> dict:
    if len(changed) + len(added) + len(deleted) > MAX_LISTED_IDS:
        reload, changed, added, deleted = True, [], [], []
    message = {
        "type": "sheet.changed",
        "sheet_id": sheet_id,
        "version": version,
        "changed": sorted(changed),
        "added": sorted(added),
        "deleted": sorted(deleted),
        "reload": reload,
    }
    async_to_sync(get_channel_layer().group_send)(sheet_group(sheet_id), message)
    return message


# The sheets list (/sheets/) listens here: one small message per sync that starts or ends, so
# open lists re-render that sheet's row (state, row count, last sync) for their own user.
SHEETS_GROUP = "sheets"


def sheet_synced_send(*, sheet_id: int) -> None:
    """Tell open sheets lists that a sheet's sync state changed; Redis down only loses the push
    (the list catches up on its next load or reconnect), never the sync."""
    try:
        async_to_sync(get_channel_layer().group_send)(
            SHEETS_GROUP, {"type": "sheet.synced", "sheet_id": sheet_id}
        )
    except RedisError as exc:
        logger.warning("could not announce the sync of sheet %s (%s)", sheet_id, exc)
