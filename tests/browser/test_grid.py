"""The live grid in Chromium, two people on the demo "Project Tracker"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sheets import sync
from sheets.models import CellEdit, Column, Row, Sheet, SheetGrant
from tests.conftest import run_in_thread
from tests.sheets.conftest import PROJECT_TRACKER, sheet_id_named
from tests.sheets.edit_support import change_in_smartsheet, remote_cell

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tracker(sandbox, alice, bob) -> Sheet:
    """Project Tracker mirrored (in a thread: Playwright's loop runs in this one), both can edit."""
    sheet_id = sheet_id_named(sandbox, PROJECT_TRACKER)
    run_in_thread(sync.sheets_discover, sheet_ids=[sheet_id])
    run_in_thread(sync.sheet_sync, sheet_id=sheet_id)
    sheet = Sheet.objects.get(pk=sheet_id)
    for user, (first, last) in ((alice, ("Alice", "Archer")), (bob, ("Bob", "Baker"))):
        user.first_name, user.last_name = first, last
        user.save()
        SheetGrant.objects.create(sheet=sheet, user=user, role="edit")
    return sheet


@pytest.fixture
def second_page(browser, live_server_url, client):
    """Another person's browser (its own context, so its own session)."""
    from django.conf import settings
    from django.test import Client

    context = browser.new_context(base_url=live_server_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)

    def login(user):
        other = Client()
        other.force_login(user)
        cookie = other.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server_url}]
        )
        return context.new_page()

    yield login
    context.close()


def column(sheet: Sheet, title: str) -> Column:
    return Column.objects.get(sheet=sheet, title=title)


def row_at(sheet: Sheet, number: int) -> Row:
    return Row.objects.get(sheet=sheet, row_number=number)


def cell(page, row: Row, col: Column):
    return page.locator(f"#c-{row.pk}-{col.pk}")


def edit(page, row: Row, col: Column, text: str) -> None:
    """Click a cell, wait for its editor, type over the value and press Enter."""
    cell(page, row, col).click()
    field = cell(page, row, col).locator("input[name=text]")
    expect(field).to_be_focused()
    field.fill(text)
    field.press("Enter")


def open_grid(page, sheet: Sheet) -> None:
    page.goto(f"/sheets/{sheet.pk}/")
    expect(page.get_by_test_id("grid")).to_be_visible()


def both_open(page_a, page_b, sheet: Sheet) -> None:
    """Both grids open, each showing the other person: both sheet sockets are live."""
    open_grid(page_a, sheet)
    open_grid(page_b, sheet)
    expect(page_a.locator("#presence .avatar[title^='Bob Baker']")).to_have_count(1)
    expect(page_b.locator("#presence .avatar[title^='Alice Archer']")).to_have_count(1)


def test_opening_the_grids_second_socket_is_not_taken_for_a_reconnect(page, login, alice, tracker):
    # The grid page holds two sockets (notifications and the sheet's); a catch-up re-fetch on
    # the second one's first "open" would replace the rows under an editor just opened.
    page.add_init_script(
        'window.catchUps = 0; document.addEventListener("DOMContentLoaded", () => '
        'document.body.addEventListener("ws:reconnected", () => window.catchUps++));'
    )
    login(alice)
    open_grid(page, tracker)
    expect(page.locator("[ws-connect][data-ws-was-live]")).to_have_count(2)
    assert page.evaluate("window.catchUps") == 0


def test_an_edit_in_one_browser_appears_in_the_other_without_a_reload(
    page, login, second_page, alice, bob, tracker
):
    notes, row = column(tracker, "Notes"), row_at(tracker, 5)
    login(alice)
    bobs = second_page(bob)
    both_open(page, bobs, tracker)

    edit(page, row, notes, "Changed by Alice")
    expect(cell(page, row, notes)).to_have_text("Changed by Alice")
    expect(cell(bobs, row, notes)).to_have_text("Changed by Alice", timeout=1000)
    # Enter moved Alice's focus one row down, as in a spreadsheet.
    expect(cell(page, row_at(tracker, 6), notes)).to_be_focused()


def test_when_both_edit_one_cell_the_second_save_gets_the_conflict_card(
    sandbox, page, login, second_page, alice, bob, tracker
):
    notes, row = column(tracker, "Notes"), row_at(tracker, 7)
    login(alice)
    bobs = second_page(bob)
    both_open(page, bobs, tracker)

    cell(bobs, row, notes).click()
    expect(cell(bobs, row, notes).locator("input[name=text]")).to_be_focused()
    # Bob's editor shows as Bob's in Alice's grid.
    expect(page.locator("#presence .avatar[title='Bob Baker (editing)']")).to_have_count(1)
    edit(page, row, notes, "Alice's note")
    expect(cell(page, row, notes)).to_have_text("Alice's note")

    # Bob's open editor is not clobbered: it says what changed underneath.
    expect(bobs.get_by_test_id("cell-underneath")).to_contain_text("Alice's note")
    cell(bobs, row, notes).locator("input[name=text]").fill("Bob's note")
    cell(bobs, row, notes).locator("input[name=text]").press("Enter")
    card = bobs.get_by_test_id("conflict-card")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("conflict-mine")).to_have_text("Bob's note")
    expect(card.get_by_test_id("conflict-theirs")).to_contain_text("Alice's note")
    assert run_in_thread(remote_cell, sandbox, tracker, row.pk, notes)["value"] == "Alice's note"

    card.get_by_test_id("keep-theirs").click()
    expect(cell(bobs, row, notes)).to_have_text("Alice's note")


def test_a_change_made_in_smartsheet_appears_in_the_open_grid_after_a_sync(
    sandbox, page, login, alice, bob, second_page, tracker
):
    status, row = column(tracker, "Status"), row_at(tracker, 9)
    login(alice)
    bobs = second_page(bob)
    both_open(page, bobs, tracker)
    new = "Blocked" if row.value(status.pk) != "Blocked" else "Done"
    run_in_thread(change_in_smartsheet, sandbox, tracker, row.pk, status, new)
    run_in_thread(sync.sheet_sync, sheet_id=tracker.pk)
    expect(cell(page, row, status)).to_have_text(new)


def test_the_keyboard_moves_between_cells_and_typing_starts_an_edit(
    sandbox, page, login, alice, tracker
):
    task, owner, notes = column(tracker, "Task"), column(tracker, "Owner"), column(tracker, "Notes")
    first, second = row_at(tracker, 2), row_at(tracker, 3)
    login(alice)
    open_grid(page, tracker)

    cell(page, first, task).click()
    expect(cell(page, first, task).locator("input[name=text]")).to_be_focused()
    page.keyboard.press("Escape")
    expect(cell(page, first, task)).to_be_focused()
    expect(cell(page, first, task).locator("form")).to_have_count(0)

    page.keyboard.press("ArrowDown")
    expect(cell(page, second, task)).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(cell(page, second, owner)).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(cell(page, first, owner)).to_be_focused()

    # Typing on a focused cell starts editing with that key; Tab saves and moves right.
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(cell(page, first, notes)).to_be_focused()
    page.keyboard.type("Keyed in")
    expect(cell(page, first, notes).locator("input[name=text]")).to_have_value("Keyed in")
    page.keyboard.press("Enter")
    expect(cell(page, first, notes)).to_have_text("Keyed in")
    expect(cell(page, second, notes)).to_be_focused()
    assert run_in_thread(remote_cell, sandbox, tracker, first.pk, notes)["value"] == "Keyed in"


def test_a_bad_date_shows_the_reason_and_nothing_is_written(sandbox, page, login, alice, tracker):
    due, row = column(tracker, "Due"), row_at(tracker, 4)
    before = run_in_thread(remote_cell, sandbox, tracker, row.pk, due)
    login(alice)
    open_grid(page, tracker)
    cell(page, row, due).click()
    page.keyboard.press("Escape")
    expect(cell(page, row, due)).to_be_focused()
    page.keyboard.type("2025-13-45")
    page.keyboard.press("Enter")

    message = page.get_by_test_id("cell-message")
    expect(message).to_contain_text("Enter a date like 2026-11-30")
    expect(cell(page, row, due).locator("input[name=text]")).to_have_value("2025-13-45")
    assert run_in_thread(remote_cell, sandbox, tracker, row.pk, due) == before
    assert not CellEdit.objects.exists()


def test_presence_shows_the_other_person_and_the_cell_they_are_editing(
    page, login, second_page, alice, bob, tracker
):
    status, row = column(tracker, "Status"), row_at(tracker, 3)
    login(alice)
    bobs = second_page(bob)
    both_open(page, bobs, tracker)
    expect(page.locator("#presence .avatar")).to_have_text("BB")

    cell(bobs, row, status).click()
    expect(cell(bobs, row, status).locator("select")).to_be_focused()
    target = cell(page, row, status)
    expect(page.locator("#presence .avatar[title='Bob Baker (editing)']")).to_have_count(1)
    expect(target).to_have_css("outline-style", "solid")
    bobs.keyboard.press("Escape")
    expect(page.locator("#presence .avatar[title='Bob Baker']")).to_have_count(1)
    expect(target).not_to_have_css("outline-style", "solid")

    bobs.close()
    expect(page.locator("#presence .avatar")).to_have_count(0)


def test_rows_are_added_below_the_focused_one_and_deleted_after_a_confirmation(
    page, login, alice, tracker
):
    task, third, fourth = column(tracker, "Task"), row_at(tracker, 3), row_at(tracker, 4)
    login(alice)
    open_grid(page, tracker)
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    cell(page, third, task).click()
    page.keyboard.press("Escape")
    page.get_by_test_id("row-add").click()
    expect(page.locator(".toast")).to_contain_text("Row added.")
    added = page.locator(f"#r-{third.pk} + tr")
    expect(added).not_to_have_attribute("data-row", str(fourth.pk))
    new_id = added.get_attribute("data-row")
    assert Row.objects.filter(pk=new_id, sheet=tracker).exists()

    added.locator("input[name=row]").check()
    expect(page.get_by_test_id("rows-delete")).to_have_text("Delete 1 row")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("rows-delete").click()
    expect(page.locator(f"#r-{new_id}")).to_have_count(0)
    assert not Row.objects.filter(pk=new_id).exists()


def test_ctrl_z_undoes_the_last_edit_and_the_grid_shows_it(sandbox, page, login, alice, tracker):
    notes, row = column(tracker, "Notes"), row_at(tracker, 11)
    before = cell(page, row, notes)
    login(alice)
    open_grid(page, tracker)
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    original = before.inner_text()
    edit(page, row, notes, "Oops")
    expect(before).to_have_text("Oops")
    page.keyboard.press("Control+z")
    expect(page.locator(".toast")).to_contain_text("Undone.")
    expect(before).to_have_text(original)
    assert run_in_thread(remote_cell, sandbox, tracker, row.pk, notes).get("value") != "Oops"
