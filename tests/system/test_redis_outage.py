"""The whole stack through a Redis outage: nothing is restarted, everything recovers by itself.

A daphne, a Celery worker with an embedded beat (the real poller, every second) and the sandbox
calling the webhook receiver, all on a private redis-server that the test stops while another
user changes rows in Smartsheet, then starts again empty, as after a crash.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import smartsheet
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ai.models import DeploymentVerdict
from core.consumers import CLOSE_TRY_AGAIN_LATER, user_group
from core.processes import process_stop
from sheets import sync
from sheets.events import sheet_group
from sheets.models import Column, Row, Sheet
from sheets.webhooks import webhooks_register
from tests.conftest import (
    ROOT,
    daphne_server,
    run_in_thread,
    server_env,
    server_log_path,
    wait_until,
)
from tests.sheets.conftest import GroupInbox, other_user_client, sheet_id_named

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# Generous: the machine is shared and loaded; the test waits on conditions, never on the clock.
SETTLE = 60


@dataclass
class Stack:
    url: str
    sheet: Sheet
    primary: Column
    logs: dict[str, Path]
    sandbox: object

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/notifications/"

    def log_text(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_worker_and_beat(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process, below)
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "celery", "-A", "config", "worker", "-B"),
            *("-Q", "interactive,bulk", "-P", "threads", "-c", "4"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"),
        ],
        cwd=ROOT,
        env=server_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log = log
    return proc


@pytest.fixture
def stack(private_redis, sandbox, settings, tmp_path) -> Iterator[Stack]:
    """Daphne, worker and beat on the private Redis; Project Tracker mirrored and hooked."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    callback_url = f"{url}/webhooks/smartsheet/"
    settings.WEBHOOK_CALLBACK_URL = callback_url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = private_redis.url
    settings.CHANNEL_LAYERS = layers
    env = {
        "TEST_REDIS_URL": private_redis.url,
        "WEBHOOK_CALLBACK_URL": callback_url,
        "SHEETS_SYNC_DEBOUNCE": "0.2",
        "SHEETS_POLL_INTERVAL": "1",
        "WORKBENCH_TEST_BEAT": "1",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
    }
    logs = {"daphne": server_log_path("outage-daphne"), "worker": server_log_path("outage-worker")}

    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    sync.sheets_discover(sheet_ids=[sheet_id])
    run_in_thread(sync.sheet_sync, sheet_id=sheet_id)
    worker = _start_worker_and_beat(env, logs["worker"])
    try:
        with daphne_server(port, logs["daphne"], **env) as url:
            [report] = webhooks_register(callback_url=callback_url)
            assert report.status == "ENABLED", report.action
            # The worker checks the AI deployments as it starts: then it is consuming too.
            wait_until(
                lambda: worker.poll() is None and DeploymentVerdict.objects.exists(),
                timeout=SETTLE,
                what=f"the worker to start (see {logs['worker']})",
            )
            yield Stack(
                url=url,
                sheet=Sheet.objects.get(pk=sheet_id),
                primary=Column.objects.get(sheet_id=sheet_id, primary=True),
                logs=logs,
                sandbox=sandbox,
            )
    finally:
        process_stop(worker)
        worker.log.close()


# --- what a user or an operator would look at ------------------------------------------------


def _sandbox_rows(stack: Stack) -> dict[int, object]:
    owner = other_user_client(stack.sandbox, token="sandbox-token")
    remote = owner.Sheets.get_sheet(stack.sheet.pk)
    return {
        int(row.id): next(
            (c.value for c in row.cells if int(c.column_id) == stack.primary.pk), None
        )
        for row in remote.rows
    }


def _mirror_rows(stack: Stack) -> dict[int, object]:
    return {
        row.pk: row.value(stack.primary.pk) for row in Row.objects.filter(sheet_id=stack.sheet.pk)
    }


def _mirror_converged(stack: Stack) -> bool:
    return _mirror_rows(stack) == _sandbox_rows(stack)


def _webhook_status_in_smartsheet(stack: Stack) -> str:
    owner = other_user_client(stack.sandbox, token="sandbox-token")
    return str(owner.Webhooks.get_webhook(stack.sheet.webhook_id).status)


def _callback_counters(stack: Stack) -> dict[str, int]:
    counters = stack.sandbox.stats()["services"]["smartsheet"]["counters"]
    return {
        name: counters.get(name, 0)
        for name in ("webhook_callbacks_sent", "webhook_callbacks_failed")
    }


def _readiness(stack: Stack) -> tuple[int, dict]:
    response = httpx.get(f"{stack.url}/readyz", timeout=10)
    return response.status_code, response.json()


def _edit_rows_as_pat(stack: Stack, values: dict[int, str]) -> None:
    other_user_client(stack.sandbox).Sheets.update_rows(
        stack.sheet.pk,
        [
            smartsheet.models.Row(
                {"id": row_id, "cells": [{"columnId": stack.primary.pk, "value": value}]}
            )
            for row_id, value in values.items()
        ],
    )


def _add_row_as_pat(stack: Stack, value: str) -> None:
    other_user_client(stack.sandbox).Sheets.add_rows(
        stack.sheet.pk,
        [
            smartsheet.models.Row(
                {"toBottom": True, "cells": [{"columnId": stack.primary.pk, "value": value}]}
            )
        ],
    )


@contextmanager
def _socket(stack: Stack, client, user) -> Iterator[ClientConnection]:
    """A WebSocket as the browser opens it: session cookie, same origin."""
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    with connect(
        stack.ws_url,
        origin=stack.url,
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
        open_timeout=SETTLE,
    ) as socket:
        # The "live" marker comes once the socket has joined its groups.
        assert 'data-state="open"' in socket.recv(timeout=SETTLE)
        yield socket


def _listen(group: str) -> GroupInbox:
    inbox = GroupInbox(group)
    inbox.thread.start()
    assert inbox.ready.wait(SETTLE), "the channel layer did not accept the listener"
    return inbox


def _push_toast(user, message: str) -> None:
    run_in_thread(
        async_to_sync(get_channel_layer().group_send),
        user_group(user.pk),
        {"type": "notify", "message": message, "level": "success"},
    )


def _assert_no_traceback(stack: Stack) -> None:
    for name in stack.logs:
        text = stack.log_text(name)
        assert "Traceback" not in text, f"the {name} log has a traceback:\n{text[-4000:]}"


@pytest.fixture
def open_sockets() -> Iterator[ExitStack]:
    """WebSockets the test opens, closed when it ends."""
    with ExitStack() as sockets:
        yield sockets


# --- the tests --------------------------------------------------------------------------------


def test_after_a_redis_outage_the_stack_catches_up_on_every_change_without_a_restart(
    stack, private_redis, client, alice, open_sockets
):
    rows = list(Row.objects.filter(sheet=stack.sheet).order_by("row_number")[:2])
    before = _callback_counters(stack)
    old_socket = open_sockets.enter_context(_socket(stack, client, alice))
    code, ready = _readiness(stack)
    assert code == 200 and ready["checks"]["azure_openai"] == {"status": "ok"}

    private_redis.stop()
    # The open socket is closed with "try again later", which the page answers by reconnecting.
    with pytest.raises(ConnectionClosed) as closed:
        old_socket.recv(timeout=SETTLE)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_TRY_AGAIN_LATER

    # A page opening its socket now is told the same (daphne refuses the handshake).
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        open_sockets.enter_context(_socket(stack, client, alice))

    _edit_rows_as_pat(stack, {rows[0].pk: "Edited in the outage", rows[1].pk: "Also edited"})
    _add_row_as_pat(stack, "Added in the outage")
    stack.sandbox.control("POST", "flush")
    during = _callback_counters(stack)
    assert during["webhook_callbacks_failed"] == before["webhook_callbacks_failed"] == 0
    assert during["webhook_callbacks_sent"] > before["webhook_callbacks_sent"]
    assert _webhook_status_in_smartsheet(stack) == "ENABLED"
    # The receiver left the sync to the poller; the mirror is behind until Redis returns.
    assert Sheet.objects.get(pk=stack.sheet.pk).sync_requested_at is not None
    assert not _mirror_converged(stack)
    code, ready = _readiness(stack)
    assert code == 503 and ready["down"] == ["redis"]
    assert ready["checks"]["azure_openai"] == {"status": "ok"}  # the last AI verdict is kept

    private_redis.start()  # empty, as after a crash
    wait_until(lambda: _mirror_converged(stack), timeout=SETTLE, what="the mirror to catch up")

    # New work flows end to end: a change, its callback, a sync task, an announcement.
    inbox = _listen(sheet_group(stack.sheet.pk))
    _edit_rows_as_pat(stack, {rows[0].pk: "Edited after the outage"})
    wait_until(
        lambda: Row.objects.get(pk=rows[0].pk).value(stack.primary.pk) == "Edited after the outage",
        timeout=SETTLE,
        what="a change after the outage to reach the mirror through its webhook",
    )
    assert inbox.get(timeout=SETTLE)["changed"] == [rows[0].pk]
    inbox.stopped = True

    new_socket = open_sockets.enter_context(_socket(stack, client, alice))
    _push_toast(alice, "Back after the outage")
    assert "Back after the outage" in new_socket.recv(timeout=SETTLE)

    code, ready = _readiness(stack)
    assert code == 200 and ready["checks"]["azure_openai"] == {"status": "ok"}
    assert _callback_counters(stack)["webhook_callbacks_failed"] == 0
    assert _webhook_status_in_smartsheet(stack) == "ENABLED"
    _assert_no_traceback(stack)


def test_a_webhook_smartsheet_disabled_while_redis_hung_is_re_enabled_and_its_sheet_resynced(
    stack, private_redis
):
    # Smartsheet gives up after a few attempts here (14 over hours in production).
    stack.sandbox.configure(
        smartsheet={
            "webhook_retry_attempts": 2,
            "webhook_retry_base_ms": 50,
            "webhook_timeout_ms": 1000,
        }
    )
    row = Row.objects.filter(sheet=stack.sheet).order_by("row_number").first()

    # A hung Redis, not a stopped one: every call waits for its timeout, so the receiver answers
    # too late and each callback fails.
    private_redis.freeze()
    _edit_rows_as_pat(stack, {row.pk: "Edited while Redis hung"})
    _add_row_as_pat(stack, "Added while Redis hung")
    stack.sandbox.control("POST", "flush")
    assert _webhook_status_in_smartsheet(stack) == "DISABLED_CALLBACK_FAILED"
    assert _callback_counters(stack)["webhook_callbacks_failed"] == 2

    private_redis.crash()
    private_redis.start()  # empty
    # The app records it too: the late status callback may land after the repair, and the next
    # round corrects that.
    wait_until(
        lambda: (
            _webhook_status_in_smartsheet(stack) == "ENABLED"
            and Sheet.objects.get(pk=stack.sheet.pk).webhook_status == "ENABLED"
        ),
        timeout=SETTLE,
        what="the poller to re-enable the webhook",
    )
    wait_until(lambda: _mirror_converged(stack), timeout=SETTLE, what="the mirror to catch up")

    # The webhook carries changes again.
    _edit_rows_as_pat(stack, {row.pk: "Edited once the webhook was back"})
    wait_until(
        lambda: (
            Row.objects.get(pk=row.pk).value(stack.primary.pk) == "Edited once the webhook was back"
        ),
        timeout=SETTLE,
        what="a change to reach the mirror through the re-enabled webhook",
    )
    _assert_no_traceback(stack)
