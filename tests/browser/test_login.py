from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_user_logs_in_through_the_form_and_sees_the_home_page(page, alice):
    page.goto("/")
    expect(page).to_have_url("/accounts/login/?next=/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_test_id("home-title")).to_have_text("Welcome, alice")
    expect(page.get_by_role("navigation").get_by_role("link", name="Sheets")).to_be_visible()
    expect(page.get_by_test_id("sandbox-banner")).to_be_visible()
    # The page's notification socket is open through daphne (the consumer's marker arrived).
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)


def test_a_toast_pushed_to_a_user_appears_in_their_open_page(page, login, alice):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from core.consumers import user_group
    from tests.conftest import run_in_thread

    login(alice).goto("/")
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    layer = get_channel_layer()
    run_in_thread(
        async_to_sync(layer.group_send),
        user_group(alice.pk),
        {"type": "notify", "message": "Job finished", "level": "success"},
    )
    expect(page.locator(".toast-success")).to_have_text("Job finished")
