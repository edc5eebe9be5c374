"""WebSockets: the origin check (scheme, host and port) and the channel layer in Redis outages."""

from __future__ import annotations

import copy
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application, websocket_origin_allowed
from core.consumers import CLOSE_TRY_AGAIN_LATER, user_group
from tests.conftest import SOCKET_CONNECT_TIMEOUT, run_in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(client, user) -> tuple[bytes, bytes]:
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())


def _communicator(headers, server=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    if server is not None:  # as daphne fills it in: the address the server listens on
        communicator.scope["server"] = server
    return communicator


def _accepted(headers, server=None) -> bool:
    async def run():
        communicator = _communicator(headers, server)
        connected, _ = await communicator.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        await communicator.disconnect()
        return connected

    return run_in_thread(async_to_sync(run))


# --- Origin -----------------------------------------------------------------------------------


def test_a_page_on_another_port_of_the_same_host_cannot_open_a_socket(client, alice):
    cookie = _session_cookie(client, alice)
    server = ("127.0.0.1", 8000)
    assert not _accepted([(b"origin", b"http://127.0.0.1:9999"), cookie], server)
    assert not _accepted(
        [(b"origin", b"http://127.0.0.1:9999"), (b"host", b"127.0.0.1:8000"), cookie], server
    )
    assert _accepted([(b"origin", b"http://127.0.0.1:8000"), cookie], server)
    assert _accepted(
        [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"), cookie], server
    )


def test_a_page_on_a_csrf_trusted_origin_may_open_a_socket(client, alice, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://workbench.example.com"]
    cookie = _session_cookie(client, alice)
    headers = [(b"host", b"127.0.0.1:8000"), cookie]
    assert _accepted([(b"origin", b"https://workbench.example.com"), *headers])
    assert not _accepted([(b"origin", b"http://workbench.example.com"), *headers])
    assert not _accepted([(b"origin", b"https://workbench.example.com:8443"), *headers])


def test_origin_rules_follow_the_browser_and_the_settings(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    settings.ALLOWED_HOSTS = ["workbench.local", "127.0.0.1"]
    allowed = websocket_origin_allowed
    # The default port may be written out or left off, on either side.
    assert allowed(origin="http://workbench.local", host="workbench.local:80", secure=False)
    assert allowed(origin="https://workbench.local:443", host="workbench.local", secure=True)
    # Behind TLS the page must be https too; a host outside ALLOWED_HOSTS is never same-origin.
    assert not allowed(origin="http://workbench.local", host="workbench.local", secure=True)
    assert not allowed(origin="http://evil.test:8000", host="evil.test:8000", secure=False)
    # Trusted subdomains, with the scheme they were listed with.
    assert allowed(origin="https://a.example.com", host="127.0.0.1:8000", secure=False)
    assert not allowed(origin="http://a.example.com", host="127.0.0.1:8000", secure=False)
    # Browsers always send an Origin; without one it is not a page of ours.
    assert not allowed(origin=None, host="127.0.0.1:8000", secure=False)
    assert not allowed(origin="null", host="127.0.0.1:8000", secure=False)


# --- Redis outages ----------------------------------------------------------------------------


@pytest.fixture
def layer_on_private_redis(private_redis, settings):
    """The product's channel layer settings, pointed at a Redis this test may stop."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = private_redis.url
    settings.CHANNEL_LAYERS = layers  # channels drops its cached layer when this changes
    return private_redis


SAME_ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
TOAST = {"type": "notify", "message": "Sync finished", "level": "success"}


def test_the_first_socket_after_a_redis_restart_receives_pushes(
    client, alice, layer_on_private_redis
):
    redis_server = layer_on_private_redis
    headers = [*SAME_ORIGIN, _session_cookie(client, alice)]

    async def a_push_arrives() -> str:
        communicator = _communicator(headers)
        connected, code = await communicator.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        assert connected, f"refused with {code}"
        assert 'data-state="open"' in await communicator.receive_from()
        await get_channel_layer().group_send(user_group(alice.pk), TOAST)
        toast = await communicator.receive_from()
        await communicator.disconnect()
        return toast

    async def run():
        assert "Sync finished" in await a_push_arrives()
        # The same process (and its connection pool) lives through the restart.
        redis_server.stop()
        redis_server.start()
        assert "Sync finished" in await a_push_arrives()

    run_in_thread(async_to_sync(run))


def test_sockets_close_for_a_retry_without_a_traceback_while_redis_is_down(
    client, alice, layer_on_private_redis, caplog
):
    redis_server = layer_on_private_redis
    headers = [*SAME_ORIGIN, _session_cookie(client, alice)]

    async def run():
        # An open socket whose Redis goes away is closed with "try again later".
        open_socket = _communicator(headers)
        assert (await open_socket.connect(timeout=SOCKET_CONNECT_TIMEOUT))[0]
        await open_socket.receive_from()
        redis_server.stop()
        closed = await open_socket.receive_output(timeout=10)
        # A new socket while Redis is down is refused the same way, not with a crash.
        new_socket = _communicator(headers)
        refused = await new_socket.connect(timeout=10)
        return closed, refused

    with caplog.at_level(logging.WARNING):
        closed, refused = run_in_thread(async_to_sync(run))
    assert closed == {"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER}
    assert refused == (False, CLOSE_TRY_AGAIN_LATER)
    warnings = [r for r in caplog.records if r.name == "core.consumers"]
    assert len(warnings) == 2
    assert "cannot reach Redis" in warnings[0].getMessage()
    assert all(record.exc_info is None for record in caplog.records)
