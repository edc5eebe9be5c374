"""Fixtures for the sheet mirror tests: a fast-failing client, a mirrored sheet, another user."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
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
from tests.plugins.sandbox import USER_AGENT

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
    owner = smartsheet.Smartsheet(
        access_token="sandbox-token", api_base=base, user_agent=USER_AGENT
    )
    owner.errors_as_exceptions(True)
    return {s.name: int(s.id) for s in owner.Sheets.list_sheets(include_all=True).data}


def other_user_client(sandbox, token: str = "sandbox-token-2") -> smartsheet.Smartsheet:
    """A plain SDK client, as someone else editing the sheet in Smartsheet would use."""
    client = smartsheet.Smartsheet(
        access_token=token, api_base=sandbox.smartsheet_base, user_agent=USER_AGENT
    )
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

    def get(self, timeout: float = 30) -> dict:
        return self.messages.get(timeout=timeout)


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


# --- Webhook callbacks (tests/sheets/test_webhooks*.py) ---------------------------------------

WEBHOOK_URL = "/webhooks/smartsheet/"
WEBHOOK_SECRET = "the-shared-secret"


@pytest.fixture
def hooked(db) -> Sheet:
    """A mirrored sheet with an enabled webhook (id 555) whose secret we know."""
    return Sheet.objects.create(
        id=1001,
        name="Hooked",
        webhook_id=555,
        webhook_status="ENABLED",
        webhook_shared_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
def enqueued(monkeypatch) -> list:
    """Sync tasks the receiver scheduled (recorded instead of sent to the broker)."""
    from sheets.tasks import sheet_sync_task

    calls: list = []
    monkeypatch.setattr(sheet_sync_task, "apply_async", lambda args, **kw: calls.append(args))
    return calls


def callback_body(nonce: str | None = "n-1", webhook_id: int = 555, **extra) -> bytes:
    """An event callback as Smartsheet sends it (`nonce=None` leaves the nonce out)."""
    payload = {
        "nonce": nonce,
        "timestamp": "2025-01-01T00:00:00.000+00:00",
        "webhookId": webhook_id,
        "scope": "sheet",
        "scopeObjectId": 1001,
        "events": [{"objectType": "cell", "eventType": "updated", "rowId": 1, "columnId": 2}],
        **extra,
    }
    if nonce is None:
        del payload["nonce"]
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_callback(client, body: bytes, signature: str | None = None, **headers):
    if signature:
        headers["Smartsheet-Hmac-SHA256"] = signature
    return client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)


@pytest.fixture
def sent_syncs(monkeypatch) -> list[dict]:
    """Sync tasks sent to the broker, recorded instead: {"sheet_id", "full", "countdown"}.

    `run_sent_syncs(sent_syncs)` then runs them as a worker would (the task function itself).
    """
    from sheets.tasks import sheet_sync_task

    sent: list[dict] = []

    def record(args, countdown=None, **options):
        sent.append({"sheet_id": args[0], "full": bool(args[1:]), "countdown": countdown})

    monkeypatch.setattr(sheet_sync_task, "apply_async", record)
    return sent


def run_sent_syncs(sent: list[dict]) -> list[str]:
    from django.db import connection

    from sheets.tasks import sheet_sync_task
    from tests.conftest import run_in_thread

    # In a transactional test the announcements run (async_to_sync), which a browser test's
    # event loop in this thread forbids; other tests' data is visible to this thread only.
    run = _run_here if connection.in_atomic_block else run_in_thread
    summaries = []
    while sent:
        task = sent.pop(0)
        summaries.append(run(sheet_sync_task, task["sheet_id"], full=task["full"]))
    return summaries


def _run_here(fn, *args, **kwargs):
    return fn(*args, **kwargs)


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
