"""The grid page, read side: access, partials, filter and sort in the database, query counts."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from sheets import grid
from sheets.models import Column, Row, Sheet, SheetGrant


@pytest.fixture
def budget(db) -> Sheet:
    """A small hand-made sheet with one column of each kind the filter treats differently."""
    sheet = Sheet.objects.create(id=1, name="Budget", row_count=6)
    columns = [
        Column(id=11, sheet=sheet, index=0, title="Item", type="TEXT_NUMBER", primary=True),
        Column(
            id=12,
            sheet=sheet,
            index=1,
            title="Status",
            type="PICKLIST",
            options=["Open", "Blocked", "Done"],
        ),
        Column(id=13, sheet=sheet, index=2, title="Hours Spent", type="TEXT_NUMBER"),
        Column(id=14, sheet=sheet, index=3, title="Due", type="DATE"),
        Column(id=15, sheet=sheet, index=4, title="Paid", type="CHECKBOX"),
        Column(id=16, sheet=sheet, index=5, title="Owner", type="CONTACT_LIST"),
        Column(
            id=17,
            sheet=sheet,
            index=6,
            title="Created",
            type="DATETIME",
            system_column_type="CREATED_DATE",
        ),
        Column(id=18, sheet=sheet, index=7, title="Secret", type="TEXT_NUMBER", hidden=True),
    ]
    Column.objects.bulk_create(columns)
    data = [
        ("Laptops", "Open", 9, "2025-03-10", True, ("priya@example.com", "Priya Patel")),
        ("Desks", "Blocked", 10, "2025-02-01", False, ("omar@example.com", "Omar Khan")),
        ("Chairs", "Done", 2.5, "2025-04-01", True, None),
        ("Monitors", "blocked", "n/a", None, None, ("priya@example.com", "Priya Patel")),
        ("Cables", None, 100, "2025-01-15", False, None),
    ]
    rows = []
    for number, (item, status, hours, due, paid, owner) in enumerate(data, start=1):
        cells = {"11": {"value": item, "displayValue": item}}
        if status:
            cells["12"] = {"value": status, "displayValue": status}
        cells["13"] = {"value": hours, "displayValue": str(hours)}
        if due:
            cells["14"] = {"value": due}
        if paid is not None:
            cells["15"] = {"value": paid}
        if owner:
            cells["16"] = {"value": owner[0], "displayValue": owner[1]}
        cells["17"] = {"value": "2025-01-01T09:00:00Z", "displayValue": "01/01/25 9:00 AM"}
        rows.append(Row(id=100 + number, sheet=sheet, row_number=number, cells=cells))
    # A child row under "Desks", and a formula cell.
    rows.append(
        Row(
            id=106,
            sheet=sheet,
            row_number=6,
            parent_id=102,
            cells={
                "11": {"value": "Desk lamps", "displayValue": "Desk lamps"},
                "13": {"value": 12, "displayValue": "12", "formula": "=[Hours Spent]2 + 2"},
            },
        )
    )
    Row.objects.bulk_create(rows)
    return sheet


def grant(sheet: Sheet, user, role: str = "edit") -> None:
    SheetGrant.objects.create(sheet=sheet, user=user, role=role)


def shown_items(response) -> list[str]:
    return re.findall(
        r'class="cell t-text_number primary"[^>]*>([^<]*)</td>', response.content.decode()
    )


def items_for(sheet: Sheet, q: str = "", sort: str = "") -> list[str]:
    columns = grid.grid_columns(sheet=sheet)
    condition = grid.filter_parse(text=q, columns=columns)
    order = grid.sort_parse(text=sort, columns=columns)
    page = grid.rows_page(
        sheet=sheet, columns=columns, editable=True, condition=condition, sort=order
    )
    return [r.row.cells["11"]["value"] for r in page.rows]


# --- access -------------------------------------------------------------------------------------


def test_a_user_without_a_grant_gets_the_sites_not_found_page(client, alice, budget):
    client.force_login(alice)
    response = client.get(reverse("sheets:grid", args=[budget.pk]))
    assert response.status_code == 404
    assert b"Nothing here" in response.content
    assert b'class="container-fluid topbar"' in response.content  # the site's layout
    assert b"Laptops" not in response.content


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, budget):
    response = client.get(reverse("sheets:grid", args=[budget.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_viewer_gets_a_read_only_grid(client, alice, budget):
    grant(budget, alice, "view")
    client.force_login(alice)
    response = client.get(reverse("sheets:grid", args=[budget.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-editable="false"' in html
    assert 'data-testid="read-only"' in html
    assert "Add row" not in html
    # Every cell is marked read-only, and asking for an editor gives the plain cell back.
    classes = re.findall(r'<td id="c-[^"]*" data-col="\d+" class="([^"]*)"', html)
    assert len(classes) == 6 * 7
    assert all(" ro" in c for c in classes)
    editor = client.get(reverse("sheets:cell", args=[budget.pk, 101, 12]) + "?edit=1")
    assert b"<form" not in editor.content
    assert b"Open" in editor.content


def test_a_viewer_cannot_save_a_cell(client, alice, budget):
    grant(budget, alice, "view")
    client.force_login(alice)
    response = client.post(
        reverse("sheets:cell", args=[budget.pk, 101, 12]), {"text": "Done", "expected": '"Open"'}
    )
    assert response.status_code == 403
    assert b"You cannot do that here" in response.content


def test_the_sheets_list_links_each_name_to_its_grid(client, alice, budget):
    grant(budget, alice, "view")
    client.force_login(alice)
    response = client.get(reverse("sheets:index"))
    assert f'href="{reverse("sheets:grid", args=[budget.pk])}"'.encode() in response.content


# --- what the page shows ------------------------------------------------------------------------


def test_the_grid_shows_titles_type_hints_and_the_primary_column_first(client, alice, budget):
    grant(budget, alice)
    client.force_login(alice)
    html = client.get(reverse("sheets:grid", args=[budget.pk])).content.decode()
    titles = re.findall(r'class="col-title">([^<▲▼]*)', html)
    assert [t.strip() for t in titles] == [
        "Item",
        "Status",
        "Hours Spent",
        "Due",
        "Paid",
        "Owner",
        "Created",
    ]
    assert "Secret" not in html  # hidden columns stay hidden
    assert '<small class="type-hint">dropdown</small>' in html
    assert '<small class="type-hint">created</small>' in html


def test_formula_cells_show_their_value_with_the_formula_on_hover(client, alice, budget):
    grant(budget, alice)
    client.force_login(alice)
    html = client.get(reverse("sheets:grid", args=[budget.pk])).content.decode()
    cell = re.search(r'<td id="c-106-13"[^>]*>([^<]*)</td>', html)
    assert cell.group(1) == "12"
    assert 'title="=[Hours Spent]2 + 2"' in cell.group(0)
    assert " formula" in cell.group(0)


def test_system_columns_are_read_only_for_an_editor_too(client, alice, budget):
    grant(budget, alice)
    client.force_login(alice)
    html = client.get(reverse("sheets:grid", args=[budget.pk])).content.decode()
    assert re.search(r'<td id="c-101-17"[^>]* ro[ "]', html)
    assert not re.search(r'<td id="c-101-12"[^>]* ro[ "]', html)
    editor = client.get(reverse("sheets:cell", args=[budget.pk, 101, 17]) + "?edit=1")
    assert b"<form" not in editor.content


def test_child_rows_are_indented_under_their_parent(client, alice, budget):
    grant(budget, alice)
    client.force_login(alice)
    html = client.get(reverse("sheets:grid", args=[budget.pk])).content.decode()
    assert re.search(r'<td id="c-106-11"[^>]*style="--depth: 1"', html)
    assert not re.search(r'<td id="c-102-11"[^>]*--depth', html)


def test_a_long_sheet_renders_100_rows_and_loads_the_next_ones_as_the_user_scrolls(
    client, alice, tracker
):
    grant(tracker, alice)
    client.force_login(alice)
    url = reverse("sheets:grid", args=[tracker.pk])
    html = client.get(url).content.decode()
    assert html.count('<tr id="r-') == 100
    more = re.search(r'<tr class="more-rows" hx-get="([^"]+)"\s+hx-trigger="revealed"', html)
    assert more.group(1) == "?offset=100"

    # The next page comes as the rows partial alone (htmx), with no further trigger: 200 rows.
    response = client.get(url + "?offset=100", HTTP_HX_REQUEST="true")
    rows = response.content.decode()
    assert "<html" not in rows and "<thead" not in rows
    assert rows.count('<tr id="r-') == 100
    assert 'data-number="101"' in rows and 'data-number="200"' in rows
    assert "more-rows" not in rows


def test_the_page_takes_a_constant_number_of_queries(
    client, alice, tracker, budget, django_assert_max_num_queries
):
    grant(tracker, alice)
    grant(budget, alice)
    client.force_login(alice)
    status = Column.objects.get(sheet=tracker, title="Status")
    due = Column.objects.get(sheet=tracker, title="Due")
    urls = [
        reverse("sheets:grid", args=[budget.pk]),
        reverse("sheets:grid", args=[tracker.pk]),
        reverse("sheets:grid", args=[tracker.pk]) + f"?q=Status+%3D+Done&sort=-{due.pk}",
        reverse("sheets:grid", args=[tracker.pk]) + f"?q=review&sort={status.pk}",
    ]
    # session, user, sheet, grant, columns, row ids, their count, rows, child rows, pending
    # edits, running jobs with their marked cells: however many rows the sheet has (6 or 200)
    # or the filter keeps.
    for url in urls:
        with django_assert_max_num_queries(11):
            assert client.get(url).status_code == 200
    with django_assert_max_num_queries(10):
        client.get(
            reverse("sheets:grid", args=[tracker.pk]) + "?offset=100", HTTP_HX_REQUEST="true"
        )


# --- filter and sort ----------------------------------------------------------------------------


def test_a_filter_naming_a_column_and_an_operator_is_a_condition(budget):
    columns = grid.grid_columns(sheet=budget)
    condition = grid.filter_parse(text="status = Blocked", columns=columns)
    assert (condition.column.title, condition.op, condition.value) == ("Status", "=", "Blocked")
    condition = grid.filter_parse(text="Hours Spent>=10", columns=columns)
    assert (condition.column.title, condition.op, condition.value) == ("Hours Spent", ">=", "10")
    condition = grid.filter_parse(text="Owner contains priya", columns=columns)
    assert (condition.column.title, condition.op) == ("Owner", "contains")
    # Text that only starts like a column is free text.
    assert grid.filter_parse(text="Status report", columns=columns).column is None
    assert grid.filter_parse(text="  ", columns=columns) is None


def test_a_filter_that_cannot_apply_says_how_to_write_it(client, alice, budget):
    columns = grid.grid_columns(sheet=budget)
    with pytest.raises(grid.FilterInvalid, match="Paid = true"):
        grid.filter_parse(text="Paid > 3", columns=columns)
    with pytest.raises(grid.FilterInvalid, match="date like 2026-11-30"):
        grid.filter_parse(text="Due < next week", columns=columns)
    grant(budget, alice)
    client.force_login(alice)
    response = client.get(reverse("sheets:grid", args=[budget.pk]), {"q": "Due < soon"})
    assert b"Compare Due with a date like 2026-11-30." in response.content
    assert len(shown_items(response)) == 6  # shown, not applied


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Status = Blocked", ["Desks", "Monitors"]),  # case does not matter
        ("Status != Blocked", ["Laptops", "Chairs", "Cables", "Desk lamps"]),  # blanks included
        ("Hours Spent > 9", ["Desks", "Cables", "Desk lamps"]),  # numbers as numbers, not text
        ("Hours Spent <= 9", ["Laptops", "Chairs"]),
        ("Hours Spent = 2.5", ["Chairs"]),
        ("Due < 2025-03-01", ["Desks", "Cables"]),
        ("Paid = true", ["Laptops", "Chairs"]),
        ("Paid = false", ["Desks", "Monitors", "Cables", "Desk lamps"]),
        ("Owner = priya patel", ["Laptops", "Monitors"]),
        ("Owner contains omar@", ["Desks"]),
        ("desk", ["Desks", "Desk lamps"]),  # free text over every column
        ("PRIYA", ["Laptops", "Monitors"]),  # the name shown and the email behind it
        ("n/a", ["Monitors"]),
    ],
)
def test_filters_run_in_the_database(budget, q, expected):
    assert items_for(budget, q=q) == expected


def test_free_text_finds_values_the_stored_json_spells_differently(budget):
    Row.objects.filter(pk=101).update(cells={"11": {"value": 'Desk "Pro" Café\\2'}})
    assert items_for(budget, q='"pro"') == ['Desk "Pro" Café\\2']
    assert items_for(budget, q="Café") == ['Desk "Pro" Café\\2']
    assert items_for(budget, q="\\2") == ['Desk "Pro" Café\\2']
    assert items_for(budget, q="Hours Spent = 2.50") == ["Chairs"]


def test_a_sort_orders_numbers_numerically_and_puts_empty_cells_last(budget):
    assert items_for(budget, sort="13") == [
        "Chairs",
        "Laptops",
        "Desks",
        "Desk lamps",
        "Cables",
        "Monitors",
    ]
    assert items_for(budget, sort="-13")[:2] == ["Monitors", "Cables"]
    assert items_for(budget, sort="14") == [
        "Cables",
        "Desks",
        "Laptops",
        "Chairs",
        "Monitors",
        "Desk lamps",
    ]
    assert items_for(budget, sort="-14")[-2:] == ["Monitors", "Desk lamps"]
    assert items_for(budget, sort="999") == items_for(budget)  # an unknown column: sheet order


def test_filter_and_sort_live_in_the_url_and_headers_keep_the_filter(client, alice, budget):
    grant(budget, alice)
    client.force_login(alice)
    response = client.get(
        reverse("sheets:grid", args=[budget.pk]), {"q": "Paid = true", "sort": "-11"}
    )
    html = response.content.decode()
    assert shown_items(response) == ["Laptops", "Chairs"]
    assert 'aria-sort="descending"' in html
    assert 'value="Paid = true"' in html
    # Clicking "Item" again goes back to sheet order, still filtered.
    assert 'href="?q=Paid%20%3D%20true&amp;sort=" class="col-title">Item ▼' in html
    assert "2 of 6 rows" in " ".join(html.split())


# --- editors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column", "needle"),
    [
        (101, 12, '<select name="text"'),
        (101, 14, 'type="date" class="date-picker" value="2025-03-10"'),
        (101, 15, 'type="checkbox" name="text" value="true" checked'),
        (101, 16, 'type="email" name="text" value="priya@example.com"'),
        (101, 11, 'type="text" name="text" value="Laptops"'),
        (106, 13, 'value="=[Hours Spent]2 + 2"'),
    ],
)
def test_each_column_type_gets_its_own_editor(client, alice, budget, row, column, needle):
    grant(budget, alice)
    client.force_login(alice)
    response = client.get(reverse("sheets:cell", args=[budget.pk, row, column]) + "?edit=1")
    html = response.content.decode()
    assert needle in html
    assert 'name="expected"' in html


def test_long_text_is_edited_in_a_textarea_and_typing_a_key_starts_with_it(client, alice, budget):
    Row.objects.filter(pk=101).update(cells={"11": {"value": "x" * 120}})
    grant(budget, alice)
    client.force_login(alice)
    url = reverse("sheets:cell", args=[budget.pk, 101, 11])
    assert b"<textarea" in client.get(url + "?edit=1").content
    typed = client.get(url + "?edit=1&text=Q").content.decode()
    assert ">Q</textarea>" in typed
    assert f'name="expected" value="&quot;{"x" * 120}&quot;"' in typed  # the value it started from
    short = reverse("sheets:cell", args=[budget.pk, 102, 11])
    assert 'value="Q"' in client.get(short + "?edit=1&text=Q").content.decode()
