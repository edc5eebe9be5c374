from __future__ import annotations

from sheets import services, tasks
from sheets.models import CellEdit
from tests.sheets.edit_support import (
    change_in_smartsheet,
    clear_breaker,
    column_named,
    remote_cell,
    rows_of,
)


def smartsheet_down(sandbox) -> None:
    sandbox.configure(smartsheet={"fail_rate": 1.0, "fail_codes": [4004]})


def smartsheet_back(sandbox) -> None:
    sandbox.configure(smartsheet={"fail_rate": 0.0})
    clear_breaker()


def edit(user, sheet, row, column, text, expected=None):
    return services.cell_update(
        user=user,
        sheet_id=sheet.pk,
        row_id=row.pk,
        column_id=column.pk,
        text=text,
        expected=row.value(column.pk) if expected is None else expected,
    )


def test_an_edit_made_during_an_outage_waits_and_is_written_once_smartsheet_is_back(
    sandbox, tracker, editor
):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[2]
    smartsheet_down(sandbox)
    result = edit(editor, tracker, row, notes, "Written later")
    assert result.status == "pending"
    assert "will be written as soon as Smartsheet is back" in result.message
    # Asked again (a retried request): still one journal entry.
    assert edit(editor, tracker, row, notes, "Written later").edit == result.edit
    assert CellEdit.objects.get().status == "pending"
    # Still down: the task leaves it pending.
    assert tasks.pending_edits_apply() == 0
    smartsheet_back(sandbox)
    assert remote_cell(sandbox, tracker, row.pk, notes).get("value") != "Written later"
    assert tasks.pending_edits_apply() == 1
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Written later"
    journal = CellEdit.objects.get()
    assert (journal.status, journal.applied_at is not None) == ("applied", True)
    row.refresh_from_db()
    assert row.value(notes.pk) == "Written later"
    assert tasks.pending_edits_apply() == 0  # nothing left, nothing written twice


def test_a_pending_edit_is_conflict_checked_when_it_is_finally_applied(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[3]
    smartsheet_down(sandbox)
    assert edit(editor, tracker, row, notes, "Mine, late").status == "pending"
    smartsheet_back(sandbox)
    change_in_smartsheet(sandbox, tracker, row.pk, notes, "Pat's, meanwhile")
    assert tasks.pending_edits_apply() == 1
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Pat's, meanwhile"
    journal = CellEdit.objects.get()
    assert journal.status == "conflict"
    assert journal.old_value == "Pat's, meanwhile"


def test_a_block_pasted_during_an_outage_waits_and_is_written_after(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    rows = rows_of(tracker)[30:32]
    smartsheet_down(sandbox)
    result = services.cells_paste(
        user=editor, sheet_id=tracker.pk, row_id=rows[0].pk, column_id=notes.pk, block="p\nq"
    )
    assert result.pending == [(rows[0].pk, notes.pk), (rows[1].pk, notes.pk)]
    assert "as soon as Smartsheet is back" in result.message
    smartsheet_back(sandbox)
    assert tasks.pending_edits_apply() == 2
    assert [remote_cell(sandbox, tracker, r.pk, notes)["value"] for r in rows] == ["p", "q"]


def test_beat_retries_pending_edits_every_minute():
    import config.settings as configured  # the test settings switch beat off

    entry = configured.CELERY_BEAT_SCHEDULE["sheets-pending-edits"]
    assert (entry["task"], entry["schedule"]) == (tasks.pending_edits_apply.name, 60.0)


def test_ctrl_z_on_an_edit_still_waiting_drops_it(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[4]
    before = row.value(notes.pk)
    smartsheet_down(sandbox)
    assert edit(editor, tracker, row, notes, "Never mind").status == "pending"
    assert services.last_edit_undo(user=editor, sheet_id=tracker.pk).status == "applied"
    smartsheet_back(sandbox)
    assert tasks.pending_edits_apply() == 0
    assert remote_cell(sandbox, tracker, row.pk, notes).get("value") == before
    assert CellEdit.objects.get().status == "failed"
