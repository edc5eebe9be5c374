from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.urls import reverse

from config.asgi import application
from core.consumers import CLOSE_UNAUTHENTICATED
from tests.conftest import SOCKET_CONNECT_TIMEOUT, run_in_thread

PAGES = ["home", "sheets:index", "jobs:index", "chat:index"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.django_db
def test_admin_sends_anonymous_visitors_to_its_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_logged_in_users_see_each_page(client, alice, name):
    client.force_login(alice)
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b"alice" in response.content  # the user menu


@pytest.mark.django_db
def test_the_login_page_logs_a_user_in(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


@pytest.mark.django_db
def test_a_wrong_password_says_what_to_do(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"do not match an account" in response.content


@pytest.mark.django_db
def test_logout_needs_a_post_and_ends_the_session(client, alice):
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_staff_see_the_admin_link_and_others_do_not(client, alice, staff):
    client.force_login(alice)
    assert b'href="/admin/"' not in client.get(reverse("home")).content
    client.force_login(staff)
    assert b'href="/admin/"' in client.get(reverse("home")).content


@pytest.mark.django_db
def test_pages_send_the_csrf_token_with_htmx_requests(client, alice):
    client.force_login(alice)
    body = client.get(reverse("home")).content.decode()
    assert 'hx-headers=\'{"x-csrftoken": "' in body
    assert "/static/vendor/htmx-2.0.11.min.js" in body


def _connect(headers):
    async def run():
        communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
        connected, code = await communicator.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        first = await communicator.receive_from() if connected else None
        await communicator.disconnect()
        return connected, code, first

    return run_in_thread(async_to_sync(run))


# What a browser sends for a page served at http://127.0.0.1 (port 80).
SAME_ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


@pytest.mark.django_db(transaction=True)
def test_anonymous_websockets_are_refused():
    connected, code, _ = _connect(SAME_ORIGIN)
    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


@pytest.mark.django_db(transaction=True)
def test_logged_in_websockets_are_accepted(client, alice):
    client.force_login(alice)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [*SAME_ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    connected, _, first = _connect(headers)
    assert connected
    assert 'id="ws-status"' in first


@pytest.mark.django_db(transaction=True)
def test_websockets_from_another_site_are_refused(client, alice):
    client.force_login(alice)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", b"https://evil.example"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    connected, _, _ = _connect(headers)
    assert not connected
