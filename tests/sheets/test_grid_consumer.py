"""The grid's socket: access on connect, live row partials, presence."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db.models import F
from django.test import Client

from config.asgi import application
from sheets.events import sheet_changed_send
from sheets.models import Row, SheetGrant
from tests.conftest import SOCKET_CONNECT_TIMEOUT, run_in_thread
from tests.sheets.test_grid_views import budget  # noqa: F401 (the small hand-made sheet)

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")  # the origin check compares scheme, host and port with it


def headers_for(client, user) -> list[tuple[bytes, bytes]]:
    client = Client()  # one session per user: logging another user in would end the first's
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [ORIGIN, HOST, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]


async def opened(headers, sheet_id: int = 1) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/sheets/{sheet_id}/", headers=headers)
    connected, code = await socket.connect(timeout=SOCKET_CONNECT_TIMEOUT)
    assert connected, code
    assert 'id="ws-status"' in await socket.receive_from(timeout=SOCKET_CONNECT_TIMEOUT)
    return socket


async def next_matching(socket: WebsocketCommunicator, needle: str, timeout: float = 10) -> str:
    """The next message containing `needle` (others, such as presence updates, are skipped)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        message = await socket.receive_from(timeout=max(left, 0.01))
        if needle in message:
            return message


def test_a_user_without_a_grant_cannot_open_the_sheets_socket(client, alice, budget):  # noqa: F811
    headers = headers_for(client, alice)

    async def run():
        socket = WebsocketCommunicator(application, "/ws/sheets/1/", headers=headers)
        connected, code = await socket.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        await socket.disconnect()
        return connected, code

    assert run_in_thread(async_to_sync(run)) == (False, 4403)


def test_a_changed_row_arrives_as_its_partial_swapped_by_id(client, alice, budget):  # noqa: F811
    SheetGrant.objects.create(sheet=budget, user=alice, role="edit")
    headers = headers_for(client, alice)
    Row.objects.filter(pk=101).update(
        cells={"11": {"value": "Laptops"}, "12": {"value": "Done", "displayValue": "Done"}}
    )

    async def run():
        socket = await opened(headers)
        await sync_to_async(sheet_changed_send)(
            sheet_id=1, version=2, changed=[101], added=[], deleted=[105]
        )
        message = await next_matching(socket, 'id="r-101"')
        await socket.disconnect()
        return message

    message = run_in_thread(async_to_sync(run))
    assert '<tr id="r-105" hx-swap-oob="delete"></tr>' in message
    assert '<tr id="r-101" data-row="101" data-number="1" hx-swap-oob="true">' in message
    assert '<td id="c-101-12" data-col="12" class="cell t-picklist">Done</td>' in message


def test_an_added_row_goes_after_the_row_above_it(client, alice, budget):  # noqa: F811
    SheetGrant.objects.create(sheet=budget, user=alice, role="edit")
    headers = headers_for(client, alice)
    Row.objects.create(id=107, sheet=budget, row_number=7, cells={"11": {"value": "Pens"}})

    async def run():
        socket = await opened(headers)
        await sync_to_async(sheet_changed_send)(
            sheet_id=1, version=2, changed=[], added=[107], deleted=[]
        )
        message = await next_matching(socket, 'id="r-107"')
        await socket.disconnect()
        return message

    message = run_in_thread(async_to_sync(run))
    assert message.startswith('<tbody hx-swap-oob="afterend:#r-106"><tr id="r-107"')
    assert ">Pens</td>" in message


def test_adds_and_deletes_tell_open_grids_from_which_row_the_numbers_changed(
    client,
    alice,
    budget,  # noqa: F811
):
    SheetGrant.objects.create(sheet=budget, user=alice, role="edit")
    headers = headers_for(client, alice)
    Row.objects.filter(sheet=budget, row_number__gte=3).update(row_number=F("row_number") + 1)
    Row.objects.create(id=107, sheet=budget, row_number=3, cells={"11": {"value": "Pens"}})

    async def run():
        socket = await opened(headers)
        send = sync_to_async(sheet_changed_send)
        await send(sheet_id=1, version=2, changed=[101], added=[], deleted=[])
        await send(sheet_id=1, version=3, changed=[], added=[107], deleted=[])
        after_add = await next_matching(socket, "grid-renumber")
        await send(sheet_id=1, version=4, changed=[], added=[], deleted=[105])
        after_delete = await next_matching(socket, "grid-renumber")
        await socket.disconnect()
        return after_add, after_delete

    after_add, after_delete = run_in_thread(async_to_sync(run))
    # The edit of row 101 renumbered nothing: the first "renumber" is the add's, from row 3.
    assert after_add == '<template id="grid-renumber" data-from="3"></template>'
    assert after_delete == '<template id="grid-renumber" data-from="1"></template>'


def test_a_viewers_socket_renders_read_only_rows_and_a_reload_asks_to_reload(
    client,
    bob,
    budget,  # noqa: F811
):
    SheetGrant.objects.create(sheet=budget, user=bob, role="view")
    headers = headers_for(client, bob)

    async def run():
        socket = await opened(headers)
        await sync_to_async(sheet_changed_send)(
            sheet_id=1, version=2, changed=[102], added=[], deleted=[]
        )
        row = await next_matching(socket, 'id="r-102"')
        await sync_to_async(sheet_changed_send)(
            sheet_id=1, version=3, changed=[], added=[], deleted=[], reload=True
        )
        reload = await next_matching(socket, "reload-notice")
        await socket.disconnect()
        return row, reload

    row, reload = run_in_thread(async_to_sync(run))
    assert 'class="cell t-picklist ro">Blocked</td>' in row
    assert 'name="row"' not in row  # no selection box for a viewer
    assert "This sheet changed" in reload


def test_presence_shows_who_else_is_here_and_which_cell_they_edit(
    client,
    alice,
    bob,
    budget,  # noqa: F811
):
    alice.first_name, alice.last_name = "Alice", "Archer"
    alice.save()
    for user in (alice, bob):
        SheetGrant.objects.create(sheet=budget, user=user, role="edit")
    alice_headers = headers_for(client, alice)
    bob_headers = headers_for(client, bob)

    async def run():
        seen = {}
        bobs = await opened(bob_headers)
        alices = await opened(alice_headers)
        seen["joined"] = await next_matching(bobs, '<span class="avatar" title="Alice Archer"')
        await alices.send_to(text_data='{"type": "editing", "cell": "c-101-12"}')
        seen["editing"] = await next_matching(bobs, "#c-101-12{")
        await alices.send_to(text_data='{"type": "editing", "cell": "</style><script>"}')
        await alices.send_to(text_data='{"type": "idle"}')
        seen["idle"] = await next_matching(bobs, 'title="Alice Archer"')
        # Alice sees Bob, never herself.
        seen["alice"] = await next_matching(alices, 'id="presence"')
        await alices.disconnect()
        seen["left"] = await next_matching(bobs, 'id="presence"')
        while "Alice" in seen["left"]:
            seen["left"] = await next_matching(bobs, 'id="presence"')
        await bobs.disconnect()
        return seen

    seen = run_in_thread(async_to_sync(run))
    assert ">AA</span>" in seen["joined"]
    assert 'content:"Alice Archer"' in seen["editing"]
    assert "(editing)" in seen["editing"]
    assert "#c-101-12{" not in seen["idle"] and "<script>" not in seen["idle"]
    assert "Alice Archer" not in seen["alice"]
    assert "avatar" not in seen["left"]
