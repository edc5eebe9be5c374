"""Live updates in a real Chromium through a real daphne: the socket stays up, says when it is
down, and the page catches up after it comes back."""

from __future__ import annotations

import copy
import socket

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from playwright.sync_api import expect

from core.consumers import user_group
from tests.conftest import daphne_server, run_in_thread, server_log_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOAST = {"type": "notify", "message": "Job finished", "level": "success"}


def _push_toast(user) -> None:
    run_in_thread(async_to_sync(get_channel_layer().group_send), user_group(user.pk), TOAST)


def test_an_idle_page_keeps_its_one_socket_and_still_receives_a_push(page, login, alice):
    log = server_log_path()
    log_start = log.stat().st_size
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    login(alice).goto("/")
    expect(page.get_by_test_id("ws-status")).to_have_text("live")

    # Idle for six of channels-redis's 5 s blocking reads: each one used to kill the socket.
    page.wait_for_timeout(30_000)

    _push_toast(alice)
    expect(page.locator(".toast-success")).to_have_text("Job finished")
    expect(page.get_by_test_id("ws-status")).to_have_text("live")
    assert len(sockets) == 1
    with open(log, "rb") as server_log:
        server_log.seek(log_start)
        assert b"Exception inside application" not in server_log.read()


@pytest.fixture
def server_on_private_redis(private_redis, settings):
    """A daphne of this test's own whose Redis the test may stop; this process uses it too."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = private_redis.url
    settings.CHANNEL_LAYERS = layers
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = server_log_path("daphne-private-redis")
    with daphne_server(port, log, TEST_REDIS_URL=private_redis.url) as url:
        yield url, private_redis, log


def test_the_page_says_when_live_updates_pause_and_catches_up_when_they_resume(
    page, login, alice, server_on_private_redis
):
    url, redis_server, log = server_on_private_redis
    login(alice).goto(f"{url}/")
    status = page.get_by_test_id("ws-status")
    expect(status).to_have_text("live")
    expect(status).to_be_visible()
    page.evaluate(
        """() => {
            window.catchUps = 0;
            document.body.addEventListener("ws:reconnected", () => window.catchUps++);
        }"""
    )

    redis_server.stop()  # the server closes the socket: its channel layer is gone
    expect(status).to_have_text("reconnecting…")
    assert page.evaluate("window.catchUps") == 0

    redis_server.start()
    expect(status).to_have_text("live", timeout=20_000)
    assert page.evaluate("window.catchUps") == 1
    _push_toast(alice)
    expect(page.locator(".toast-success")).to_have_text("Job finished")
    server_log = log.read_text()
    assert "cannot reach Redis" in server_log
    assert "Traceback" not in server_log
