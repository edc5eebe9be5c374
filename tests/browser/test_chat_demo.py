"""The demo in Chromium: a table of Blocked rows, then a cell set through a diff card and Apply,
seen in the grid."""

from __future__ import annotations

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.browser.test_chat import _ask, _open_new_chat
from tests.chat.conftest import tracker_mirror
from tests.conftest import run_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tracker(sandbox):
    """Project Tracker mirrored (in a thread: Playwright's event loop runs in this one)."""

    def mirror():
        try:
            return tracker_mirror(sandbox)
        finally:
            connection.close()

    return run_in_thread(mirror)


def test_the_demo_a_table_of_blocked_rows_then_a_cell_set_through_a_diff_card(
    page,
    login,
    alice,
    tracker,
    celery_worker,
):
    from sheets.models import Column, Row, SheetGrant

    SheetGrant.objects.create(sheet=tracker, user=alice, role="edit")
    status = Column.objects.get(sheet=tracker, title="Status")
    target = next(
        row
        for row in Row.objects.filter(sheet=tracker, parent_id__isnull=True).order_by("row_number")
        if row.value(status.pk) != "Done"
    )
    login(alice)
    _open_new_chat(page)
    _ask(page, "Show rows where Status is Blocked in Project Tracker")
    reply = page.locator("[data-role='assistant']").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    table = reply.locator("table")
    expect(table.locator("th").first).to_have_text("row_number")
    blocked = sum(1 for r in Row.objects.filter(sheet=tracker) if r.value(status.pk) == "Blocked")
    expect(table.locator("tbody tr")).to_have_count(min(blocked, 20))
    expect(table.locator("tbody tr").first).to_contain_text("Blocked")

    grid = page.context.new_page()
    grid.goto(f"/sheets/{tracker.pk}/")
    cell = grid.locator(f"#c-{target.pk}-{status.pk}")
    expect(cell).not_to_have_text("Done")

    _ask(page, f"Set Status of row {target.row_number} to Done in Project Tracker")
    reply = page.locator("[data-role='assistant']").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    card = reply.get_by_test_id("change-set")
    expect(card.get_by_test_id("diff-cell")).to_contain_text("Done")
    expect(cell).not_to_have_text("Done")  # nothing written before Apply
    card.get_by_test_id("apply").click()
    expect(card).to_have_attribute("data-status", "applied", timeout=20_000)
    expect(card.get_by_test_id("outcome")).to_contain_text("1 of 1 cell(s) written")
    grid.reload()
    expect(cell).to_have_text("Done")
    expect(page.get_by_test_id("event").last).to_contain_text("pressed Apply")
