"""The grid's write side through the views, against the sandbox: what a person sees."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from sheets.models import CellEdit, Row, RowEdit, SheetGrant
from tests.sheets.edit_support import change_in_smartsheet, column_named, remote_cell, rows_of


@pytest.fixture
def editor_client(client, alice, tracker):
    SheetGrant.objects.create(sheet=tracker, user=alice, role="edit")
    client.force_login(alice)
    return client


def cell_url(sheet, row, column) -> str:
    return reverse("sheets:cell", args=[sheet.pk, row.pk, column.pk])


def save(client, sheet, row, column, text, expected=None, **extra):
    value = row.value(column.pk) if expected is None else expected
    return client.post(
        cell_url(sheet, row, column),
        {"text": text, "expected": json.dumps(value), **extra},
        HTTP_HX_REQUEST="true",
    )


def test_a_saved_cell_comes_back_showing_the_new_value(sandbox, tracker, editor_client):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[4]
    response = save(editor_client, tracker, row, notes, "Call the vendor")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<td id="c-{row.pk}-{notes.pk}"')
    assert ">Call the vendor</td>" in html
    assert "<form" not in html
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Call the vendor"


def test_a_bad_date_shows_the_reason_keeps_what_was_typed_and_writes_nothing(
    sandbox, tracker, editor_client
):
    due = column_named(tracker, "Due")
    row = rows_of(tracker)[2]
    before = remote_cell(sandbox, tracker, row.pk, due)
    response = save(editor_client, tracker, row, due, "31/02/2025")
    html = response.content.decode()
    assert 'data-testid="editor"' in html
    assert "Enter a date like 2026-11-30" in html
    assert 'value="31/02/2025"' in html
    # The editor still carries the value the user started from, for the next try.
    assert (
        f'name="expected" value="{json.dumps(row.value(due.pk)).replace(chr(34), "&quot;")}"'
        in html
    )
    assert remote_cell(sandbox, tracker, row.pk, due) == before
    assert not CellEdit.objects.exists()


def test_a_cell_changed_in_smartsheet_meanwhile_gets_the_conflict_card(
    sandbox, tracker, editor_client
):
    status = column_named(tracker, "Status")
    row = rows_of(tracker)[5]
    started_from = row.value(status.pk)
    theirs = "Blocked" if started_from != "Blocked" else "Done"
    change_in_smartsheet(sandbox, tracker, row.pk, status, theirs)

    response = save(editor_client, tracker, row, status, "In Progress", expected=started_from)
    html = response.content.decode()
    assert 'data-testid="conflict-card"' in html
    assert re.search(r'data-testid="conflict-mine">In Progress<', html)
    assert re.search(rf'data-testid="conflict-theirs">{theirs}', html)
    assert "Keep theirs" in html and "Use mine" in html and "Edit again" in html
    assert remote_cell(sandbox, tracker, row.pk, status)["value"] == theirs  # never overwritten

    # "Use mine" sends the value they now hold as the starting point, and force.
    forced = re.search(
        r'name="expected" value="([^"]*)"><input type="hidden" name="force" value="1">', html
    )
    expected = json.loads(forced.group(1).replace("&quot;", '"'))
    assert expected == theirs
    response = save(
        editor_client, tracker, row, status, "In Progress", expected=expected, force="1"
    )
    assert ">In Progress</td>" in response.content.decode()
    assert remote_cell(sandbox, tracker, row.pk, status)["value"] == "In Progress"
    assert CellEdit.objects.filter(forced=True, status="applied").count() == 1


def test_edit_again_reopens_the_editor_with_what_was_typed_starting_from_theirs(
    sandbox, tracker, editor_client
):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[6]
    url = cell_url(tracker, row, notes) + '?edit=1&text=Mine&expected="Theirs"'
    html = editor_client.get(url).content.decode()
    assert 'value="Mine"' in html
    assert 'name="expected" value="&quot;Theirs&quot;"' in html


def test_ctrl_z_undoes_the_users_last_edit_and_says_so(sandbox, tracker, editor_client):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[7]
    before = remote_cell(sandbox, tracker, row.pk, notes).get("value")
    save(editor_client, tracker, row, notes, "Temporary")
    response = editor_client.post(
        reverse("sheets:undo-last", args=[tracker.pk]), HTTP_HX_REQUEST="true"
    )
    assert b"Undone." in response.content
    assert b'hx-swap-oob="beforeend"' in response.content  # a toast
    assert remote_cell(sandbox, tracker, row.pk, notes).get("value") == before
    response = editor_client.post(
        reverse("sheets:undo-last", args=[tracker.pk]), HTTP_HX_REQUEST="true"
    )
    assert b"Undone." in response.content or b"nothing of yours" in response.content


def test_the_history_page_lists_edits_newest_first_filters_them_and_undoes_one(
    sandbox, tracker, editor_client
):
    notes, status = column_named(tracker, "Notes"), column_named(tracker, "Status")
    first, second = rows_of(tracker)[8:10]
    new_status = "Blocked" if second.value(status.pk) != "Blocked" else "Done"
    save(editor_client, tracker, first, notes, "First note")
    save(editor_client, tracker, second, status, new_status)
    url = reverse("sheets:history", args=[tracker.pk])
    html = editor_client.get(url).content.decode()
    assert html.index(f"<td>{new_status}</td>") < html.index("<td>First note</td>")
    filtered = editor_client.get(url, {"column": notes.pk}).content.decode()
    assert "First note" in filtered and f"<td>{new_status}</td>" not in filtered
    assert "No edits match" in editor_client.get(url, {"source": "job"}).content.decode()

    edit = CellEdit.objects.get(column_id=notes.pk)
    response = editor_client.post(reverse("sheets:undo", args=[tracker.pk, edit.pk]), follow=True)
    assert b"Undone." in response.content
    assert remote_cell(sandbox, tracker, first.pk, notes).get("value") != "First note"


def test_a_pasted_block_is_written_and_summarised(sandbox, tracker, editor_client):
    due, done = column_named(tracker, "Due"), column_named(tracker, "Done")
    start, below = rows_of(tracker)[10:12]
    flipped = [str(not r.value(done.pk)).lower() for r in (start, below)]
    # Due and Done of two rows; one date is not a date.
    block = f"2031-05-01\t{flipped[0]}\nnot a date\t{flipped[1]}"
    response = editor_client.post(
        reverse("sheets:paste", args=[tracker.pk]),
        {"row": start.pk, "column": due.pk, "block": block},
        HTTP_HX_REQUEST="true",
    )
    text = response.content.decode()
    assert "Pasted: 3 cell(s) written" in text
    assert "1 refused" in text
    assert "Enter a date like 2026-11-30" in text
    assert remote_cell(sandbox, tracker, start.pk, due)["value"] == "2031-05-01"


def test_rows_are_added_and_deleted_from_the_grid(sandbox, tracker, editor_client):
    before = Row.objects.filter(sheet=tracker).count()
    response = editor_client.post(
        reverse("sheets:row-add", args=[tracker.pk]), {"below": ""}, HTTP_HX_REQUEST="true"
    )
    assert b"Row added." in response.content
    assert Row.objects.filter(sheet=tracker).count() == before + 1
    added = RowEdit.objects.get(kind="add").row_ids
    response = editor_client.post(
        reverse("sheets:rows-delete", args=[tracker.pk]), {"row": added}, HTTP_HX_REQUEST="true"
    )
    assert b"1 row deleted" in response.content
    assert Row.objects.filter(sheet=tracker).count() == before


@pytest.mark.parametrize("name", ["cell", "undo-last", "row-add", "rows-delete", "paste"])
def test_a_viewer_is_refused_on_every_write_path(sandbox, client, bob, tracker, name):
    SheetGrant.objects.create(sheet=tracker, user=bob, role="view")
    client.force_login(bob)
    row, notes = rows_of(tracker)[0], column_named(tracker, "Notes")
    data = {
        "cell": {"text": "x", "expected": "null"},
        "undo-last": {},
        "row-add": {"below": str(row.pk)},
        "rows-delete": {"row": [str(row.pk)]},
        "paste": {"row": row.pk, "column": notes.pk, "block": "x"},
    }[name]
    if name == "cell":
        url = cell_url(tracker, row, notes)
    else:
        url = reverse(f"sheets:{name}", args=[tracker.pk])
    response = client.post(url, data)
    assert response.status_code == 403
    assert b"You cannot do that here" in response.content
    assert not RowEdit.objects.exists() and not CellEdit.objects.exists()
    assert Row.objects.filter(pk=row.pk).exists()
