from __future__ import annotations

from sheets import services
from sheets.models import CellEdit, Row
from sheets.services.paste import paste_block_parse
from tests.sheets.conftest import smartsheet_stats
from tests.sheets.edit_support import change_in_smartsheet, column_named, remote_cell, rows_of


def test_clipboard_text_from_a_spreadsheet_is_split_into_cells():
    assert paste_block_parse("a\tb\r\nc\td\r\n") == [["a", "b"], ["c", "d"]]
    assert paste_block_parse('"two\nlines"\tx\n') == [["two\nlines", "x"]]
    assert paste_block_parse("only") == [["only"]]


def test_a_pasted_block_is_one_write_and_a_summary(sandbox, tracker, editor):
    status, due = column_named(tracker, "Status"), column_named(tracker, "Due")
    rows = rows_of(tracker)[10:13]
    # Options other than what each row holds, so every valid cell is a change.
    first, third = (
        next(o for o in status.options if o != row.value(status.pk)) for row in (rows[0], rows[2])
    )
    block = f"{first}\t2026-01-05\nLater\t2026-01-06\n{third}\tsoon\n"
    before = smartsheet_stats(sandbox)["routes"].get("PUT /sheets/{id}/rows", 0)
    # Status restricts values to its options here.
    status.validation = True
    status.save()
    result = services.cells_paste(
        user=editor, sheet_id=tracker.pk, row_id=rows[0].pk, column_id=status.pk, block=block
    )
    assert smartsheet_stats(sandbox)["routes"]["PUT /sheets/{id}/rows"] == before + 1
    assert sorted(result.written) == sorted(
        [
            (rows[0].pk, status.pk),
            (rows[0].pk, due.pk),
            (rows[1].pk, due.pk),
            (rows[2].pk, status.pk),
        ]
    )
    refused = {(r, c): message for r, c, message in result.refused}
    assert "not an option of “Status”" in refused[(rows[1].pk, status.pk)]
    assert refused[(rows[2].pk, due.pk)].startswith("Enter a date like")
    assert result.summary() == "4 cell(s) written, 2 refused."
    assert remote_cell(sandbox, tracker, rows[1].pk, due)["value"] == "2026-01-06"
    assert Row.objects.get(pk=rows[2].pk).value(status.pk) == third
    assert CellEdit.objects.filter(source="paste", status="applied").count() == 4


def test_a_pasted_cell_changed_in_smartsheet_since_it_was_seen_is_refused(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    rows = rows_of(tracker)[20:22]
    change_in_smartsheet(sandbox, tracker, rows[1].pk, notes, "Pat's note")
    result = services.cells_paste(
        user=editor, sheet_id=tracker.pk, row_id=rows[0].pk, column_id=notes.pk, block="a\nb"
    )
    assert result.written == [(rows[0].pk, notes.pk)]
    ((row_id, column_id, message),) = result.refused
    assert (row_id, column_id) == (rows[1].pk, notes.pk)
    assert message == "Changed in Smartsheet by Pat Other since you saw it."
    assert remote_cell(sandbox, tracker, rows[1].pk, notes)["value"] == "Pat's note"


def test_a_block_past_the_last_row_writes_what_fits(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    last = rows_of(tracker)[-1]
    result = services.cells_paste(
        user=editor, sheet_id=tracker.pk, row_id=last.pk, column_id=notes.pk, block="x\ny"
    )
    assert result.written == [(last.pk, notes.pk)]
    assert "past the sheet's last row" in result.refused[0][2]
