"""The sheets list: Sync now (edit grant only), search, live sync state over its socket."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from config.asgi import application
from sheets import client as smartsheet
from sheets import sync
from sheets.events import SHEETS_GROUP, sheet_synced_send
from sheets.models import Sheet, SheetGrant
from tests.conftest import SOCKET_CONNECT_TIMEOUT, run_in_thread
from tests.sheets.conftest import PROJECT_TRACKER, sheet_id_named
from tests.sheets.test_grid_consumer import headers_for, next_matching

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def sheets(db) -> list[Sheet]:
    return [
        Sheet.objects.create(id=10 + i, name=f"Sheet {i}", row_count=i * 10, sync_state="ok")
        for i in range(3)
    ]


def test_a_viewer_gets_no_sync_button_and_a_403_when_posting_anyway(
    client, alice, sheets, sent_syncs
):
    SheetGrant.objects.create(sheet=sheets[0], user=alice, role="view")
    client.force_login(alice)
    page = client.get(reverse("sheets:index"))
    assert b'data-testid="sync-now"' not in page.content

    response = client.post(reverse("sheets:sync", args=[sheets[0].pk]), **HTMX)
    assert response.status_code == 403
    assert sent_syncs == []


def test_sync_now_queues_one_sync_and_says_so(client, alice, sheets, sent_syncs):
    SheetGrant.objects.create(sheet=sheets[1], user=alice, role="edit")
    client.force_login(alice)
    page = client.get(reverse("sheets:index"))
    assert page.content.count(b'data-testid="sync-now"') == 1

    first = client.post(reverse("sheets:sync", args=[sheets[1].pk]), **HTMX)
    again = client.post(reverse("sheets:sync", args=[sheets[1].pk]), **HTMX)

    assert first.status_code == 200
    assert b'id="sheet-11"' in first.content and b"Sync queued." in first.content
    assert b"A sync is already queued." in again.content
    assert sent_syncs == [{"sheet_id": 11, "full": False, "countdown": 0}]


def test_sync_now_while_smartsheet_is_down_says_when_to_try_again(
    client, staff, sheets, sent_syncs
):
    breaker = smartsheet.smartsheet_breaker()
    breaker.open()
    try:
        client.force_login(staff)
        response = client.post(reverse("sheets:sync", args=[sheets[0].pk]), **HTMX)
    finally:
        breaker.close()
    assert b"Smartsheet is not answering right now. Try again in 1 minute" in response.content
    assert sent_syncs == []


def test_a_sheet_the_user_cannot_see_is_a_404_for_sync_now(client, bob, sheets, sent_syncs):
    client.force_login(bob)
    assert client.post(reverse("sheets:sync", args=[sheets[0].pk])).status_code == 404
    assert sent_syncs == []


def test_the_list_is_searched_by_name_once_there_are_many_sheets(client, staff, sheets):
    client.force_login(staff)
    assert b'data-testid="sheets-search"' not in client.get(reverse("sheets:index")).content
    Sheet.objects.bulk_create(Sheet(id=100 + i, name=f"Budget {i}") for i in range(10))

    page = client.get(reverse("sheets:index"))
    found = client.get(reverse("sheets:index"), {"q": "budget 7"})
    nothing = client.get(reverse("sheets:index"), {"q": "no such"})

    assert b'data-testid="sheets-search"' in page.content
    assert [s.name for s in found.context["sheets"]] == ["Budget 7"]
    assert b"No sheet\xe2\x80\x99s name contains" in nothing.content


def test_a_member_s_list_takes_the_same_number_of_queries_however_many_sheets(
    client, alice, sheets, django_assert_num_queries
):
    for sheet in sheets[:2]:
        SheetGrant.objects.create(sheet=sheet, user=alice, role="edit")
    client.force_login(alice)
    client.get(reverse("sheets:index"))  # the session and user, warmed like the first request
    with django_assert_num_queries(5) as few:
        client.get(reverse("sheets:index"))
    more = [Sheet.objects.create(id=50 + i, name=f"More {i}") for i in range(5)]
    for sheet in more:
        SheetGrant.objects.create(sheet=sheet, user=alice, role="view")
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(reverse("sheets:index"))
    assert len(response.context["sheets"]) == 7


# --- The list's socket ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_list_socket_sends_the_synced_sheet_s_row_to_those_who_may_see_it(
    client, alice, bob, sheets
):
    SheetGrant.objects.create(sheet=sheets[2], user=alice, role="edit")
    alices, bobs = headers_for(client, alice), headers_for(client, bob)

    async def run():
        sockets = []
        for headers in (alices, bobs):
            socket = WebsocketCommunicator(application, "/ws/sheets/", headers=headers)
            connected, code = await socket.connect(timeout=SOCKET_CONNECT_TIMEOUT)
            assert connected, code
            assert 'id="ws-status"' in await socket.receive_from(timeout=SOCKET_CONNECT_TIMEOUT)
            sockets.append(socket)
        await sync_to_async(Sheet.objects.filter(pk=12).update)(row_count=1234)
        await sync_to_async(sheet_synced_send)(sheet_id=12)
        message = await next_matching(sockets[0], 'id="sheet-12"')
        bob_heard = await sockets[1].receive_nothing(timeout=1)
        for socket in sockets:
            await socket.disconnect()
        return message, bob_heard

    message, bob_heard_nothing = run_in_thread(async_to_sync(run))
    assert 'hx-swap-oob="true"' in message
    assert "1,234" in message and 'data-testid="sync-now"' in message
    assert bob_heard_nothing


def test_a_sync_announces_its_start_and_its_end_to_the_sheets_list(sandbox, db, group_inbox):
    sheet_id = sheet_id_named(sandbox, PROJECT_TRACKER)
    sync.sheets_discover(sheet_ids=[sheet_id])
    inbox = group_inbox(SHEETS_GROUP)

    sync.sheet_sync(sheet_id=sheet_id)

    assert inbox.get() == {"type": "sheet.synced", "sheet_id": sheet_id}
    assert inbox.get() == {"type": "sheet.synced", "sheet_id": sheet_id}
    assert Sheet.objects.get(pk=sheet_id).row_count > 0
