"""Fixtures for the sheet mirror tests: a fast-failing client, a mirrored sheet, another user."""

from __future__ import annotations

import asyncio
import functools
import queue
import threading

import pytest
import smartsheet
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings

from core.ratelimit import redis_client
from sheets import sync
from sheets.models import Sheet, SheetGrant

PROJECT_TRACKER = "Project Tracker"


@pytest.fixture(autouse=True)
def _fast_client(settings):
    """Short retries and a clean limiter/breaker/lock state for every test."""
    settings.SMARTSHEET_RETRY_FACTOR = 0.02
    settings.SMARTSHEET_RETRY_MAX_DELAY = 0.1
    settings.SMARTSHEET_RETRY_MAX_TRIES = 3
    settings.SMARTSHEET_TIMEOUT = 10.0
    settings.SHEETS_SYNC_DEBOUNCE = 0.2
    redis = redis_client()
    keys = [
        *redis.scan_iter(match=f"{django_settings.REDIS_PREFIX}:ratelimit:smartsheet*"),
        *redis.scan_iter(match=f"{django_settings.REDIS_PREFIX}:breaker:smartsheet*"),
        *redis.scan_iter(match=f"{django_settings.REDIS_PREFIX}:sheets:*"),
    ]
    if keys:
        redis.delete(*keys)


def sheet_id_named(sandbox, name: str) -> int:
    return _sheet_ids(sandbox.smartsheet_base)[name]


@functools.cache
def _sheet_ids(base: str) -> dict[str, int]:
    # The seed's ids are fixed; looked up once so tests that count requests are not disturbed.
    owner = smartsheet.Smartsheet(access_token="sandbox-token", api_base=base)
    owner.errors_as_exceptions(True)
    return {s.name: int(s.id) for s in owner.Sheets.list_sheets(include_all=True).data}


def other_user_client(sandbox, token: str = "sandbox-token-2") -> smartsheet.Smartsheet:
    """A plain SDK client, as someone else editing the sheet in Smartsheet would use."""
    client = smartsheet.Smartsheet(access_token=token, api_base=sandbox.smartsheet_base)
    client.errors_as_exceptions(True)
    return client


@pytest.fixture
def tracker(sandbox, db) -> Sheet:
    """Project Tracker (~200 rows), mirrored by a full sync."""
    sheet_id = sheet_id_named(sandbox, PROJECT_TRACKER)
    sync.sheets_discover(sheet_ids=[sheet_id])
    sync.sheet_sync(sheet_id=sheet_id)
    return Sheet.objects.get(pk=sheet_id)


class GroupInbox:
    """Listens on a channel-layer group from its own thread (and event loop)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.messages: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=async_to_sync(self._listen), daemon=True)

    async def _listen(self) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.ready.set()
        try:
            while not self.stopped:
                try:
                    self.messages.put(await asyncio.wait_for(layer.receive(channel), 0.3))
                except TimeoutError:
                    continue
        finally:
            await layer.group_discard(self.group, channel)

    def get(self, timeout: float = 10) -> dict:
        return self.messages.get(timeout=timeout)

    def empty_after(self, seconds: float) -> bool:
        try:
            self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def group_inbox():
    inboxes: list[GroupInbox] = []

    def listen(group: str) -> GroupInbox:
        inbox = GroupInbox(group)
        inbox.thread.start()
        assert inbox.ready.wait(5), "the channel layer did not accept the listener"
        inboxes.append(inbox)
        return inbox

    yield listen
    for inbox in inboxes:
        inbox.stopped = True
        inbox.thread.join(5)


def smartsheet_stats(sandbox) -> dict:
    """The sandbox's Smartsheet counters (empty ones before the first request)."""
    stats = sandbox.stats()["services"].get("smartsheet", {})
    return {
        "requests": 0,
        "rate_limited": 0,
        "injected_failures": 0,
        "routes": {},
        "tokens": {},
        **stats,
    }


@pytest.fixture
def editor(alice, tracker):
    """alice, with an edit grant on Project Tracker."""
    SheetGrant.objects.create(sheet=tracker, user=alice, role="edit")
    return alice


@pytest.fixture
def viewer(bob, tracker):
    """bob, with a view grant on Project Tracker."""
    SheetGrant.objects.create(sheet=tracker, user=bob, role="view")
    return bob
