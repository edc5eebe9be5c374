"""The conversation socket: only its owner connects; replies and messages arrive as they change."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chat import services
from chat.consumers import CLOSE_NOT_FOUND
from chat.events import delta_send, message_changed_send
from config.asgi import application
from tests.conftest import SOCKET_CONNECT_TIMEOUT, run_in_thread

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://testserver")


def _headers(client, user) -> list[tuple[bytes, bytes]]:
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [ORIGIN, (b"host", b"testserver"), (b"cookie", f"sessionid={cookie}".encode())]


def _connect_and(path: str, headers, action=None):
    """Connect; return (accepted, close code or None, frames received after `action`)."""

    async def run():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        if not connected:
            # As daphne does after a refusal: the consumer gets its disconnect and ends here. Left
            # running, it is cancelled when this event loop closes, and a cancel inside the
            # channel layer's receive can leave that (process-wide) layer waiting on a lock of a
            # dead loop: the next socket of this process then hangs.
            await communicator.disconnect()
            return False, code, []
        await communicator.receive_from(timeout=5)  # the "live" marker
        frames = []
        if action is not None:
            await action()
            while not await communicator.receive_nothing(timeout=1):
                frames.append(json.loads(await communicator.receive_from()))
        await communicator.disconnect()
        return True, None, frames

    return run_in_thread(async_to_sync(run))


def test_only_the_owner_can_open_a_chats_socket(client, alice, bob):
    session = services.session_create(owner=alice)
    path = f"/ws/chat/{session.pk}/"
    accepted, _, _ = _connect_and(path, _headers(client, alice))
    assert accepted
    accepted, code, _ = _connect_and(path, _headers(client, bob))
    assert (accepted, code) == (False, CLOSE_NOT_FOUND)
    accepted, code, _ = _connect_and("/ws/chat/999999/", _headers(client, alice))
    assert (accepted, code) == (False, CLOSE_NOT_FOUND)
    accepted, _, _ = _connect_and(path, [ORIGIN, (b"host", b"testserver")])
    assert not accepted


def test_the_socket_carries_the_reply_so_far_and_the_rendered_message(client, alice, queued):
    session = services.session_create(owner=alice)
    _question, reply = services.message_send(session=session, text="hi")

    async def push():
        from channels.db import database_sync_to_async

        await database_sync_to_async(delta_send)(
            session_id=session.pk, message_id=reply.pk, html="<p>Hel</p>", length=3
        )
        await database_sync_to_async(message_changed_send)(
            session_id=session.pk, message_id=reply.pk
        )

    _, _, frames = _connect_and(f"/ws/chat/{session.pk}/", _headers(client, alice), push)
    assert frames[0] == {"type": "delta", "id": reply.pk, "html": "<p>Hel</p>", "length": 3}
    assert frames[1]["type"] == "html"
    assert f'id="m-{reply.pk}"' in frames[1]["html"]
    assert 'data-testid="stop"' in frames[1]["html"]


def test_a_message_of_another_chat_is_never_rendered_into_this_socket(client, alice, queued):
    mine = services.session_create(owner=alice)
    other = services.session_create(owner=alice)
    _question, elsewhere = services.message_send(session=other, text="secret plans")

    async def push():
        from channels.db import database_sync_to_async

        # A forged event naming a message of another session, sent to this session's group.
        from channels.layers import get_channel_layer

        from chat.events import session_group

        await get_channel_layer().group_send(
            session_group(mine.pk), {"type": "chat.message", "message_id": elsewhere.pk}
        )
        await database_sync_to_async(lambda: None)()

    _, _, frames = _connect_and(f"/ws/chat/{mine.pk}/", _headers(client, alice), push)
    assert frames == []
