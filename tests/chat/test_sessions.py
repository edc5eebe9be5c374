"""Chat sessions and messages: only the owner sees them, and messages never reorder."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from chat import services
from chat.models import ChatSession, Message
from sheets.models import Sheet

pytestmark = pytest.mark.django_db


def test_the_chat_list_shows_only_my_chats(client, alice, bob):
    services.session_create(owner=alice, title="Alice's budget")
    services.session_create(owner=bob, title="Bob's secrets")
    client.force_login(alice)
    page = client.get(reverse("chat:index")).content.decode()
    assert "Alice&#x27;s budget" in page
    assert "Bob" not in page


def test_someone_elses_chat_is_a_404_on_every_page(client, alice, bob, queued):
    theirs = services.session_create(owner=bob, title="Bob's secrets")
    _question, reply = services.message_send(session=theirs, text="hello")
    client.force_login(alice)
    urls = [
        ("get", reverse("chat:session", args=[theirs.pk])),
        ("get", reverse("chat:message", args=[theirs.pk, reply.pk])),
        ("post", reverse("chat:send", args=[theirs.pk])),
        ("post", reverse("chat:rename", args=[theirs.pk])),
        ("post", reverse("chat:delete", args=[theirs.pk])),
        ("post", reverse("chat:stop", args=[theirs.pk, reply.pk])),
        ("post", reverse("chat:retry", args=[theirs.pk, reply.pk])),
    ]
    for method, url in urls:
        response = getattr(client, method)(url, {"text": "mine now", "title": "mine"})
        assert response.status_code == 404, url
    theirs.refresh_from_db()
    assert theirs.title == "Bob's secrets"
    assert theirs.messages.count() == 2
    assert not Message.objects.get(pk=reply.pk).stop_requested


def test_searching_finds_chats_by_title_and_by_what_was_said(client, alice, queued):
    budget = services.session_create(owner=alice, title="Budget")
    other = services.session_create(owner=alice, title="Other")
    services.message_send(session=other, text="Which tasks are blocked?")
    client.force_login(alice)
    found = client.get(reverse("chat:index"), {"q": "budget"}).content.decode()
    assert f'id="s-{budget.pk}"' in found and f'id="s-{other.pk}"' not in found
    found = client.get(reverse("chat:index"), {"q": "blocked"}).content.decode()
    assert f'id="s-{other.pk}"' in found and f'id="s-{budget.pk}"' not in found


def test_a_chat_can_be_renamed_and_deleted(client, alice, queued):
    session = services.session_create(owner=alice)
    services.message_send(session=session, text="hello")
    client.force_login(alice)
    response = client.post(reverse("chat:rename", args=[session.pk]), {"title": "  Plans  "})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.title == "Plans"
    client.post(reverse("chat:delete", args=[session.pk]))
    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert not Message.objects.filter(session_id=session.pk).exists()


def test_a_new_chat_can_start_on_a_sheet_i_can_see_but_not_on_others(client, staff, alice):
    sheet = Sheet.objects.create(id=77, name="Plan")
    client.force_login(staff)
    response = client.post(reverse("chat:create"), {"sheet": "77"})
    session = ChatSession.objects.get(owner=staff)
    assert response.url == reverse("chat:session", args=[session.pk])
    assert session.sheet == sheet
    client.force_login(alice)  # nothing is shared with alice
    assert client.post(reverse("chat:create"), {"sheet": "77"}).status_code == 404


def test_sending_shows_my_message_and_a_working_reply_at_once(
    client, alice, session, queued, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("chat:send", args=[session.pk]),
            {"text": "Which rows are blocked?"},
            headers={"HX-Request": "true"},
        )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Which rows are blocked?" in page
    assert 'data-testid="working"' in page and 'data-testid="stop"' in page
    question, reply = session.messages.order_by("seq")
    assert (question.role, reply.role, reply.status) == ("user", "assistant", "pending")
    assert queued == [reply.pk]
    session.refresh_from_db()
    assert session.title == "Which rows are blocked?"


def test_an_empty_message_is_refused_with_a_sentence(client, alice, session, queued):
    client.force_login(alice)
    response = client.post(
        reverse("chat:send", args=[session.pk]), {"text": "   "}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert "Write a message first." in response.content.decode()
    assert not session.messages.exists() and not queued


@pytest.mark.django_db(transaction=True)
def test_messages_sent_at_once_from_two_tabs_keep_one_order(alice, queued):
    """Each send gets two consecutive seqs (question, reply), whatever the interleaving."""
    session = services.session_create(owner=alice)
    senders = 8
    barrier = threading.Barrier(senders)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            barrier.wait()
            services.message_send(session=session, text=f"question {n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    messages = list(session.messages.order_by("seq"))
    assert [m.seq for m in messages] == list(range(1, 2 * senders + 1))
    for question, reply in zip(messages[::2], messages[1::2], strict=True):
        assert (question.role, reply.role) == ("user", "assistant")
        assert reply.pk in queued
    session.refresh_from_db()
    assert session.next_seq == 2 * senders + 1


def test_the_chat_list_costs_the_same_queries_for_many_chats(
    client, alice, django_assert_max_num_queries
):
    sheet = Sheet.objects.create(id=78, name="Plan")
    for n in range(30):
        services.session_create(owner=alice, title=f"chat {n}", sheet=sheet if n % 2 else None)
    client.force_login(alice)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("chat:index")).content.decode()
    assert page.count('data-testid="session"') == 30


def test_staff_read_conversations_in_the_admin(client, staff, alice, queued):
    session = services.session_create(owner=alice, title="Alice's plans")
    services.message_send(session=session, text="What is blocked?")
    client.force_login(staff)
    listing = client.get(reverse("admin:chat_chatsession_changelist")).content.decode()
    assert "Alice&#x27;s plans" in listing
    detail = client.get(reverse("admin:chat_chatsession_change", args=[session.pk]))
    assert "What is blocked?" in detail.content.decode()


def test_the_grid_offers_a_new_chat_on_its_sheet(client, staff):
    sheet = Sheet.objects.create(id=79, name="Roadmap")
    client.force_login(staff)
    grid = client.get(reverse("sheets:grid", args=[79])).content.decode()
    link = f"{reverse('chat:index')}?sheet=79"
    assert f'href="{link}"' in grid
    chooser = client.get(link).content.decode()
    assert f'<option value="{sheet.pk}" selected>Roadmap</option>' in chooser
