"""Rows added in the grid: the numbers below move in every open grid, the bottom row appears."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sheets.models import Row
from tests.browser.test_grid import (  # noqa: F401 (fixtures: Project Tracker, a second browser)
    both_open,
    cell,
    column,
    open_grid,
    row_at,
    second_page,
    tracker,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def number_shown(page, row: Row):
    return page.locator(f"#r-{row.pk} th.rownum span")


def test_a_row_added_in_one_grid_renumbers_the_rows_below_it_in_both(
    page,
    login,
    alice,
    bob,
    second_page,  # noqa: F811
    tracker,  # noqa: F811
):
    task, third, fourth, tenth = column(tracker, "Task"), *(row_at(tracker, n) for n in (3, 4, 10))
    login(alice)
    bobs = second_page(bob)
    both_open(page, bobs, tracker)
    expect(number_shown(bobs, fourth)).to_have_text("4")

    cell(page, third, task).click()
    page.keyboard.press("Escape")
    page.get_by_test_id("row-add").click()

    for grid in (page, bobs):
        expect(grid.get_by_test_id("row-count")).to_have_text(f"{tracker.row_count + 1} rows")
        expect(number_shown(grid, fourth)).to_have_text("5")
        expect(number_shown(grid, tenth)).to_have_text("11")
        expect(grid.locator(f"#r-{third.pk} + tr th.rownum span")).to_have_text("4")


def test_a_row_added_at_the_bottom_of_a_fully_loaded_grid_shows_up_at_once(
    page,
    login,
    alice,
    tracker,  # noqa: F811
):
    login(alice)
    open_grid(page, tracker)
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    rows = page.locator("#grid-body tr[data-row]")
    # Scrolled down until the last page has loaded (each reveal of "more rows" loads 100).
    page.wait_for_function(
        """() => {
            document.getElementById("grid-scroll").scrollTop = 1e9;
            window.scrollTo(0, 1e9);
            return !document.querySelector("[data-testid=more-rows]");
        }""",
        polling=200,
    )
    total = rows.count()
    assert total == tracker.row_count

    page.get_by_test_id("row-add").click()  # no cell focused: at the bottom

    expect(rows).to_have_count(total + 1)
    expect(rows.last.locator("th.rownum span")).to_have_text(str(total + 1))


def test_a_row_added_at_the_bottom_is_loaded_and_focused_in_the_adder_s_grid(
    page,
    login,
    alice,
    tracker,  # noqa: F811
):
    login(alice)
    open_grid(page, tracker)
    expect(page.get_by_test_id("more-rows")).to_have_count(1)  # 100 of the ~200 rows loaded
    total = tracker.row_count

    page.get_by_test_id("row-add").click()  # no cell focused: at the bottom

    last = page.locator("#grid-body tr[data-row]").last
    expect(last.locator("th.rownum span")).to_have_text(str(total + 1))
    expect(last.locator("td.cell").first).to_be_focused()
    expect(last).to_be_in_viewport()


def test_add_row_with_a_cells_editor_open_adds_below_that_row(
    page,
    login,
    alice,
    tracker,  # noqa: F811
):
    """An open editor replaced the focused cell and held no tabindex: the row went to the bottom."""
    task, third, fourth = column(tracker, "Task"), row_at(tracker, 3), row_at(tracker, 4)
    login(alice)
    open_grid(page, tracker)
    expect(page.locator("#ws-status[data-state=open]")).to_have_count(1)
    editor = cell(page, third, task).locator("input[name=text]")
    cell(page, third, task).click()
    expect(editor).to_be_focused()

    page.get_by_test_id("row-add").click()
    expect(page.locator(".toast")).to_contain_text("Row added.")

    added = Row.objects.filter(sheet=tracker, row_number=4).exclude(pk=fourth.pk).get()
    editor.press("Escape")  # the grid shows the new rows once the editor closes
    expect(page.locator(f"#r-{third.pk} + tr")).to_have_attribute("data-row", str(added.pk))
    expect(page.locator(f"#r-{added.pk} th.rownum span")).to_have_text("4")
