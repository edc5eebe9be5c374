from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from sheets import services, sync
from sheets.models import CellEdit, Row, RowEdit
from tests.sheets.conftest import other_user_client, smartsheet_stats
from tests.sheets.edit_support import (
    change_in_smartsheet,
    clear_breaker,
    column_named,
    remote_cell,
    rows_of,
)


def write(user, sheet, row, column, text):
    result = services.cell_update(
        user=user,
        sheet_id=sheet.pk,
        row_id=row.pk,
        column_id=column.pk,
        text=text,
        expected=Row.objects.get(pk=row.pk).value(column.pk),
    )
    assert result.status == "applied", result.message
    return result.edit


def remote_row_values(sandbox, sheet, row_ids) -> list[dict]:
    ss = other_user_client(sandbox)
    rows = ss.Sheets.get_sheet(sheet.pk, row_ids=row_ids).rows
    return [{c.column_id: c.value for c in r.cells if c.value is not None} for r in rows]


def test_undo_puts_the_old_value_back_and_is_journaled(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[1]
    before = row.value(notes.pk)
    edit = write(editor, tracker, row, notes, "Temporary")
    result = services.edit_undo(user=editor, edit_id=edit.pk)
    assert result.status == "applied", result.message
    assert remote_cell(sandbox, tracker, row.pk, notes).get("value") == before
    assert result.edit.undoes == edit and result.edit.source == "undo"
    assert Row.objects.get(pk=row.pk).value(notes.pk) == before
    # Undone once is enough.
    assert services.edit_undo(user=editor, edit_id=edit.pk).status == "unchanged"


def test_undo_refuses_when_the_cell_changed_since(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[2]
    edit = write(editor, tracker, row, notes, "Mine")
    change_in_smartsheet(sandbox, tracker, row.pk, notes, "Pat's, after mine")
    result = services.edit_undo(user=editor, edit_id=edit.pk)
    assert result.status == "conflict"
    assert result.theirs == "Pat's, after mine"
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Pat's, after mine"


def test_ctrl_z_undoes_the_users_own_edits_newest_first(sandbox, tracker, editor, staff):
    notes, status = column_named(tracker, "Notes"), column_named(tracker, "Status")
    row = rows_of(tracker)[3]
    note_before, status_before = row.value(notes.pk), row.value(status.pk)
    write(editor, tracker, row, notes, "First")
    write(editor, tracker, row, status, "Blocked" if status_before != "Blocked" else "Done")
    write(staff, tracker, rows_of(tracker)[9], notes, "Someone else's")
    assert services.last_edit_undo(user=editor, sheet_id=tracker.pk).status == "applied"
    assert remote_cell(sandbox, tracker, row.pk, status)["value"] == status_before
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "First"
    assert services.last_edit_undo(user=editor, sheet_id=tracker.pk).status == "applied"
    assert remote_cell(sandbox, tracker, row.pk, notes).get("value") == note_before
    assert services.last_edit_undo(user=editor, sheet_id=tracker.pk) is None
    assert remote_cell(sandbox, tracker, rows_of(tracker)[9].pk, notes)["value"] == (
        "Someone else's"
    )


def test_an_added_row_appears_below_the_chosen_row_and_undo_removes_it(sandbox, tracker, editor):
    rows = rows_of(tracker)
    last = rows[-1]
    edit = services.row_add(user=editor, sheet_id=tracker.pk, below_row_id=last.pk)
    (new_id,) = edit.row_ids
    assert [r.pk for r in rows_of(tracker)] == [r.pk for r in rows] + [new_id]
    tracker.refresh_from_db()
    assert tracker.row_count == len(rows) + 1
    assert services.edit_undo(user=editor, edit_id=edit.pk, kind="row").status == "applied"
    assert new_id not in {
        r.id for r in other_user_client(sandbox).Sheets.get_sheet(tracker.pk).rows
    }
    assert [r.pk for r in rows_of(tracker)] == [r.pk for r in rows]


def test_an_added_row_someone_filled_in_is_not_removed_by_undo(sandbox, tracker, editor):
    edit = services.row_add(user=editor, sheet_id=tracker.pk, below_row_id=None)
    (new_id,) = edit.row_ids
    notes = column_named(tracker, "Notes")
    change_in_smartsheet(sandbox, tracker, new_id, notes, "Pat uses this row")
    result = services.last_edit_undo(user=editor, sheet_id=tracker.pk)
    assert result.status == "conflict"
    assert remote_row_values(sandbox, tracker, [new_id]) == [{notes.pk: "Pat uses this row"}]


def test_deleted_rows_come_back_in_place_with_their_values(sandbox, tracker, editor):
    rows = rows_of(tracker)
    # A parent (with its children) and a plain row further down.
    parent = next(r for r in rows if Row.objects.filter(parent_id=r.pk).exists())
    children = [r.pk for r in rows if r.parent_id == parent.pk]
    plain = rows[-5]
    before = [(r.row_number, r.parent_id is not None, r.cells) for r in rows]
    edit = services.rows_delete(user=editor, sheet_id=tracker.pk, row_ids=[parent.pk, plain.pk])
    assert set(edit.row_ids) == {parent.pk, *children, plain.pk}
    assert len(rows_of(tracker)) == len(rows) - len(edit.row_ids)
    assert [r.row_number for r in rows_of(tracker)] == list(range(1, len(rows_of(tracker)) + 1))

    result = services.edit_undo(user=editor, edit_id=edit.pk, kind="row")
    assert result.status == "applied", result.message
    # Smartsheet holds the same sheet again (new ids), and a full sync agrees with the mirror.
    sync.sheet_sync(sheet_id=tracker.pk, full=True)
    after = [(r.row_number, r.parent_id is not None, r.cells) for r in rows_of(tracker)]
    assert after == before


def test_a_viewer_is_refused_on_every_write_path(sandbox, tracker, viewer):
    row = rows_of(tracker)[0]
    notes = column_named(tracker, "Notes")
    edit = CellEdit.objects.create(
        sheet=tracker, row_id=row.pk, column_id=notes.pk, status="applied", new_value="x"
    )
    row_edit = RowEdit.objects.create(sheet=tracker, kind="add", row_ids=[row.pk])
    calls = [
        lambda: services.cell_update(
            user=viewer,
            sheet_id=tracker.pk,
            row_id=row.pk,
            column_id=notes.pk,
            text="x",
            expected=None,
        ),
        lambda: services.cells_paste(
            user=viewer, sheet_id=tracker.pk, row_id=row.pk, column_id=notes.pk, block="x"
        ),
        lambda: services.row_add(user=viewer, sheet_id=tracker.pk, below_row_id=None),
        lambda: services.rows_delete(user=viewer, sheet_id=tracker.pk, row_ids=[row.pk]),
        lambda: services.edit_undo(user=viewer, edit_id=edit.pk),
        lambda: services.edit_undo(user=viewer, edit_id=row_edit.pk, kind="row"),
        lambda: services.last_edit_undo(user=viewer, sheet_id=tracker.pk),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    routes = smartsheet_stats(sandbox)["routes"]
    assert not any(route.split()[0] in ("PUT", "POST", "DELETE") for route in routes)


def test_undo_of_an_added_row_ignores_what_smartsheet_fills_in_itself(sandbox, tracker, editor):
    edit = services.row_add(user=editor, sheet_id=tracker.pk, below_row_id=None)
    (new_id,) = edit.row_ids
    # As if Notes were a "created by" column: Smartsheet's own value, not someone's typing.
    notes = column_named(tracker, "Notes")
    notes.system_column_type = "CREATED_BY"
    notes.save()
    change_in_smartsheet(sandbox, tracker, new_id, notes, "sandbox@example.com")
    assert services.last_edit_undo(user=editor, sheet_id=tracker.pk).status == "applied"
    assert not Row.objects.filter(pk=new_id).exists()


def test_row_changes_while_smartsheet_is_down_are_journaled_as_failed(sandbox, tracker, editor):
    rows = rows_of(tracker)
    sandbox.configure(smartsheet={"fail_rate": 1.0})
    added = services.row_add(user=editor, sheet_id=tracker.pk, below_row_id=None)
    deleted = services.rows_delete(user=editor, sheet_id=tracker.pk, row_ids=[rows[-1].pk])
    assert (added.status, deleted.status) == ("failed", "failed")
    assert "Smartsheet is unavailable" in deleted.error
    assert [r.pk for r in rows_of(tracker)] == [r.pk for r in rows]
    assert services.last_edit_undo(user=editor, sheet_id=tracker.pk) is None


def test_undo_of_a_delete_while_smartsheet_is_down_can_be_tried_again(sandbox, tracker, editor):
    last = rows_of(tracker)[-1]
    edit = services.rows_delete(user=editor, sheet_id=tracker.pk, row_ids=[last.pk])
    sandbox.configure(smartsheet={"fail_rate": 1.0})
    result = services.edit_undo(user=editor, edit_id=edit.pk, kind="row")
    assert result.status == "invalid"
    assert result.message.startswith("Smartsheet is not answering")
    sandbox.configure(smartsheet={"fail_rate": 0.0})
    clear_breaker()
    assert services.edit_undo(user=editor, edit_id=edit.pk, kind="row").status == "applied"
    assert rows_of(tracker)[-1].cells == last.cells
