"""What the mirror announces to open grids, and where: one group per sheet.

Message (sent with `group_send`, so a consumer method `sheet_changed` receives it):
    {"type": "sheet.changed", "sheet_id": int, "version": int | None,
     "changed": [row ids], "added": [row ids], "deleted": [row ids], "reload": bool}
`reload` is true when the columns changed or too many rows changed to list: re-render the grid.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

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
