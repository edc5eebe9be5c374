"""The grid's socket: live rows and presence for one sheet.

Rows: `sheet.changed` messages (sheets/events.py), from whatever changed the sheet, become row
partials the htmx ws extension swaps out of band by id (deleted rows are removed, added ones go
after the row before them). Each socket renders for its own user, so a viewer's rows stay
read-only.

Presence: who has the sheet open and which cell each is editing, kept in one Redis hash per sheet
(one field per socket, with the time it was last heard from: a socket that died without saying
goodbye drops out after PRESENCE_TTL). The browser says {"type": "editing", "cell": "c-<row>-<c>"}
(the cell's DOM id), {"type": "idle"} or {"type": "here"} (a heartbeat).

Work in progress: `sheet.jobs` messages (jobs/events.py) from a running AI job become its chip
beside the people (name and percent, gone when it ends) and the marks of its target cells
(queued / working / failed until written), which static/js/grid.js applies; rendered from the
message alone, with no query per socket.
"""

from __future__ import annotations

import json
import re
import time
from html import escape

import redis.asyncio as aioredis
from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.conf import settings
from django.template.loader import render_to_string

from core.consumers import AuthenticatedConsumer
from sheets import grid
from sheets.events import SHEETS_GROUP, sheet_group
from sheets.models import Row, Sheet
from sheets.selectors import sheet_role_for, sheets_visible_to
from sheets.views import sheet_list_row_context

PRESENCE_TTL = 60  # seconds without a word from a socket before it no longer counts as present
CELL_ID = re.compile(r"^c-\d+-\d+$")
COLORS = 6


def presence_key(sheet_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:sheets:presence:{sheet_id}"


def initials_of(user) -> str:
    full = user.get_full_name().split()
    if len(full) >= 2:
        return (full[0][0] + full[-1][0]).upper()
    name = (full[0] if full else user.get_username()) or "?"
    return name[:2].upper()


@database_sync_to_async
def _role_for(user, sheet_id: int) -> str | None:
    sheet = Sheet.objects.filter(pk=sheet_id).first()
    return None if sheet is None else sheet_role_for(user=user, sheet=sheet)


def rows_html(*, sheet_id: int, role: str, event: dict) -> str:
    """The out-of-band swaps for one `sheet.changed` message, as this socket's user sees them."""
    if event.get("reload"):
        return render_to_string("sheets/grid.html#reload", {})
    parts = [f'<tr id="r-{pk}" hx-swap-oob="delete"></tr>' for pk in event.get("deleted", [])]
    wanted = [*event.get("changed", []), *event.get("added", [])]
    if wanted:
        sheet = Sheet.objects.get(pk=sheet_id)
        columns = grid.grid_columns(sheet=sheet)
        rows = list(Row.objects.filter(sheet_id=sheet_id, pk__in=wanted).order_by("row_number"))
        depths = grid.row_depths(sheet_id=sheet_id, rows=rows)
        editable = role == "edit"
        grows = [
            grid.grid_row(row=r, columns=columns, editable=editable, depth=depths.get(r.pk, 0))
            for r in rows
        ]
        grid.cells_mark_pending(sheet_id=sheet_id, rows=grows)
        grid.cells_mark_activity(sheet_id=sheet_id, rows=grows)
        added = set(event.get("added", []))
        before = grid.rows_before(sheet_id=sheet_id, rows=[r for r in rows if r.pk in added])
        context = {"sheet": sheet, "editable": editable}
        for grow in grows:
            html = render_to_string(
                "sheets/grid.html#row", {**context, "grow": grow, "oob": grow.id not in added}
            )
            if grow.id in added:
                previous = before.get(grow.id)
                where = f"afterend:#r-{previous}" if previous else "afterbegin:#grid-body"
                html = f'<tbody hx-swap-oob="{where}">{html}</tbody>'
            parts.append(html)
    return "".join(parts)


def job_marks_html(event: dict) -> str:
    """A job's cell marks for grid.js: {cell id: [state, title] or null}; an ended job's go."""
    marks = {
        f"c-{int(row_id)}-{int(event['column_id'])}": mark
        for row_id, mark in event["marks"].items()
    }
    return (
        f'<template id="grid-marks" data-job="{int(event["job_id"])}" '
        f'data-active="{"true" if event["active"] else "false"}" '
        f'data-marks="{escape(json.dumps(marks))}"></template>'
    )


def renumbered_from(*, sheet_id: int, event: dict) -> int:
    """The first row number an add or delete changed (1 when rows were deleted: their numbers
    are gone with them)."""
    if event.get("deleted"):
        return 1
    numbers = Row.objects.filter(sheet_id=sheet_id, pk__in=event.get("added", [])).values_list(
        "row_number", flat=True
    )
    return min(numbers, default=1)


class SheetConsumer(AuthenticatedConsumer):
    async def get_groups(self) -> list[str] | None:
        self.sheet_id = int(self.scope["url_route"]["kwargs"]["sheet_id"])
        self.role = await _role_for(self.scope["user"], self.sheet_id)
        if self.role is None:
            return None
        return [sheet_group(self.sheet_id)]

    async def connect(self) -> None:
        self.redis = None
        await super().connect()
        if getattr(self, "role", None) is None or not getattr(self, "joined", None):
            return
        self.redis = aioredis.from_url(settings.REDIS_URL)
        await self._presence_set(cell=None)

    async def disconnect(self, code: int) -> None:
        if self.redis is not None:
            await self.redis.hdel(presence_key(self.sheet_id), self.channel_name)
            await self._presence_announce()
            await self.redis.aclose()
            self.redis = None
        await super().disconnect(code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "editing" and CELL_ID.match(str(message.get("cell", ""))):
            await self._presence_set(cell=message["cell"])
        elif kind == "idle":
            await self._presence_set(cell=None)
        elif kind == "here" and self.redis is not None:
            await self._presence_set(cell=self.cell, announce=False)

    # --- group messages ---

    async def sheet_changed(self, event: dict) -> None:
        # Not in the shared sync thread: there it would wait behind every view that is busy
        # talking to Smartsheet, and the change would reach the other grids late.
        html = await DatabaseSyncToAsync(rows_html, thread_sensitive=False)(
            sheet_id=self.sheet_id, role=self.role, event=event
        )
        if html:
            await self.send(text_data=html)
        if (event.get("added") or event.get("deleted")) and not event.get("reload"):
            # Rows below an added or deleted one now have other numbers, and an added row may
            # belong in a part of the grid no announced row is next to (the bottom of a fully
            # loaded grid, a sorted view): open grids fetch the rows they show again.
            start = await DatabaseSyncToAsync(renumbered_from, thread_sensitive=False)(
                sheet_id=self.sheet_id, event=event
            )
            html = render_to_string("sheets/grid.html#renumber", {"start": start})
            await self.send(text_data=html)

    async def sheet_jobs(self, event: dict) -> None:
        context = {"workers": event["workers"], "oob": True}
        html = render_to_string("sheets/grid.html#workers", context)
        await self.send(text_data=html)
        if event["marks"] or not event["active"]:
            await self.send(text_data=job_marks_html(event))

    async def presence_changed(self, event: dict) -> None:
        me = self.scope["user"].pk
        others = [p for p in event["people"] if p["user_id"] != me]
        html = render_to_string("sheets/grid.html#presence", {"others": others})
        await self.send(text_data=html)

    # --- presence ---

    async def _presence_set(self, *, cell: str | None, announce: bool = True) -> None:
        if self.redis is None:
            return
        self.cell = cell
        user = self.scope["user"]
        entry = {
            "user_id": user.pk,
            "name": user.get_full_name() or user.get_username(),
            "initials": initials_of(user),
            "color": user.pk % COLORS,
            "cell": cell,
            "seen": time.time(),
        }
        key = presence_key(self.sheet_id)
        await self.redis.hset(key, self.channel_name, json.dumps(entry))
        await self.redis.expire(key, PRESENCE_TTL * 2)
        if announce:
            await self._presence_announce()

    async def _presence_announce(self) -> None:
        key = presence_key(self.sheet_id)
        raw = await self.redis.hgetall(key)
        now, people, stale, by_user = time.time(), [], [], {}
        for channel, value in raw.items():
            entry = json.loads(value)
            if now - entry["seen"] > PRESENCE_TTL:
                stale.append(channel)
                continue
            # One avatar per person, however many tabs they have; an editing tab wins.
            known = by_user.get(entry["user_id"])
            if known is None or (entry["cell"] and not known["cell"]):
                by_user[entry["user_id"]] = entry
        if stale:
            await self.redis.hdel(key, *stale)
        people = sorted(by_user.values(), key=lambda e: e["name"])
        await self.channel_layer.group_send(
            sheet_group(self.sheet_id), {"type": "presence.changed", "people": people}
        )


def sheet_list_row_html(*, user, sheet_id: int) -> str:
    """The sheets list's row for one sheet, as this user sees it ("" if they may not see it)."""
    sheet = sheets_visible_to(user).filter(pk=sheet_id).first()
    if sheet is None:
        return ""
    context = {**sheet_list_row_context(user=user, sheet=sheet), "oob": True}
    return render_to_string("sheets/index.html#sheet", context)


class SheetsListConsumer(AuthenticatedConsumer):
    """The sheets list's socket: a sheet whose sync starts or ends gets its row re-rendered."""

    async def get_groups(self) -> list[str] | None:
        return [SHEETS_GROUP]

    async def sheet_synced(self, event: dict) -> None:
        html = await DatabaseSyncToAsync(sheet_list_row_html, thread_sensitive=False)(
            user=self.scope["user"], sheet_id=event["sheet_id"]
        )
        if html:
            await self.send(text_data=html)
