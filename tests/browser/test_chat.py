"""The chat in a real Chromium, through daphne, a Celery worker and the sandbox model."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from playwright.sync_api import expect

from chat.models import ChatSession, Message
from tests.chat.conftest import tracker_mirror
from tests.conftest import run_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PLAIN = (
    "Please summarise this note: the quarterly review went well, budgets are on track, the team "
    "hired two engineers, and the launch moved to March because the vendor needs more time."
)


@pytest.fixture
def tracker(sandbox):
    """Project Tracker mirrored (in a thread: Playwright's event loop runs in this one)."""

    def mirror():
        try:
            return tracker_mirror(sandbox)
        finally:
            connection.close()

    return run_in_thread(mirror)


def _open_new_chat(page, sheet_name: str = ""):
    page.goto("/chat/")
    if sheet_name:
        page.get_by_test_id("new-chat-sheet").select_option(label=sheet_name)
    page.get_by_test_id("new-chat-button").click()
    expect(page.locator("#chat[data-live='1']")).to_have_count(1)


def _ask(page, text: str) -> None:
    page.get_by_test_id("composer-input").fill(text)
    page.get_by_test_id("composer-input").press("Enter")


def test_a_question_shows_at_once_and_its_answer_streams_in(
    page,
    login,
    staff,
    tracker,
    celery_worker,
):
    login(staff)
    _open_new_chat(page)
    _ask(page, "What columns does the Project Tracker sheet have?")
    mine = page.locator("[data-role='user']")
    expect(mine).to_have_text("What columns does the Project Tracker sheet have?")
    reply = page.locator("[data-role='assistant']")
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    expect(reply.get_by_test_id("reply")).to_contain_text("Status")
    expect(reply.get_by_test_id("tool-activity")).to_contain_text("get_sheet_schema")
    expect(reply.get_by_test_id("working")).to_have_count(0)
    expect(page.get_by_test_id("composer-input")).to_have_value("")
    expect(page.get_by_test_id("chat-title")).to_have_text(re.compile("What columns"))


def test_stop_ends_the_reply_and_keeps_what_arrived(page, login, alice, sandbox, celery_worker):
    sandbox.configure(openai={"ms_per_token": 150})
    login(alice)
    _open_new_chat(page)
    _ask(page, PLAIN)
    reply = page.locator("[data-role='assistant']")
    body = reply.get_by_test_id("reply")
    expect(body).not_to_be_empty(timeout=20_000)
    reply.get_by_test_id("stop").click()
    expect(reply).to_have_attribute("data-status", "stopped", timeout=10_000)
    expect(reply.get_by_test_id("stopped")).to_contain_text("You stopped this reply")
    kept = body.inner_text()
    assert kept
    saved = Message.objects.get(session__owner=alice, role="assistant")
    assert saved.status == "stopped" and 0 < len(saved.content) < 100
    page.reload()
    expect(page.locator("[data-role='assistant']").get_by_test_id("reply")).to_have_text(kept)


def test_reloading_mid_reply_shows_what_arrived_and_continues_live(
    page, login, alice, sandbox, celery_worker
):
    sandbox.configure(openai={"ms_per_token": 100})
    login(alice)
    _open_new_chat(page)
    _ask(page, PLAIN)
    expect(page.locator("[data-role='assistant']").get_by_test_id("reply")).not_to_be_empty(
        timeout=20_000
    )
    page.reload()
    reply = page.locator("[data-role='assistant']")
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.get_by_test_id("reply")).not_to_be_empty()
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    saved = Message.objects.get(session__owner=alice, role="assistant")
    expect(reply.get_by_test_id("reply")).to_have_text(saved.content)


def test_someone_elses_chat_page_is_not_found(page, login, alice, bob):
    theirs = ChatSession.objects.create(owner=bob, title="Bob's plans")
    login(alice)
    response = page.goto(f"/chat/{theirs.pk}/")
    assert response.status == 404


def test_a_send_that_fails_says_so_and_keeps_the_text(page, login, alice):
    login(alice)
    _open_new_chat(page)
    page.route("**/messages/", lambda route: route.fulfill(status=502, body=""))
    _ask(page, "Is anyone there?")
    expect(page.get_by_role("alert")).to_contain_text("did not go through (error 502)")
    expect(page.get_by_test_id("composer-input")).to_have_value("Is anyone there?")
    expect(page.locator("[data-role='user']")).to_have_count(0)
