"""The sheets list in Chromium: Sync now runs a real sync (Celery worker) and the row updates."""

from __future__ import annotations

import pytest
import smartsheet
from playwright.sync_api import expect

from sheets.models import Sheet
from tests.browser.test_grid import tracker  # noqa: F401 (Project Tracker, Alice may edit)
from tests.conftest import run_in_thread
from tests.sheets.conftest import other_user_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _row_added_in_smartsheet(sandbox, sheet: Sheet) -> None:
    other_user_client(sandbox).Sheets.add_rows(
        sheet.pk, [smartsheet.models.Row({"toBottom": True})]
    )


def test_sync_now_brings_a_row_added_in_smartsheet_into_the_count_without_a_reload(
    sandbox,
    page,
    login,
    alice,
    celery_worker,
    tracker,  # noqa: F811
):
    before = tracker.row_count
    login(alice)
    with page.expect_websocket(lambda ws: ws.url.endswith("/ws/sheets/")) as opening:
        page.goto("/sheets/")
    socket = opening.value
    socket.wait_for_event("framereceived")  # its "live" marker: pushes reach the page
    pushed = []
    socket.on("framereceived", lambda frame: pushed.append(frame))
    row = page.locator(f"#sheet-{tracker.pk}")
    expect(row.get_by_test_id("row-count")).to_have_text(f"{before:,}")

    run_in_thread(_row_added_in_smartsheet, sandbox, tracker)
    row.get_by_test_id("sync-now").click()

    expect(row.get_by_test_id("row-count")).to_have_text(f"{before + 1:,}", timeout=20_000)
    expect(row.get_by_test_id("sync-state")).to_contain_text("in sync")
    # The new count came over the socket, not in the answer to the click.
    assert any(f"{before + 1:,}" in frame for frame in pushed)
