from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import smartsheet
from django.core.exceptions import PermissionDenied
from django.db import connection

from sheets import services, sync
from sheets.events import sheet_group
from sheets.models import CellEdit, Column, Row, Sheet, SheetGrant
from sheets.selectors import cell_edits_pending
from sheets.services.cellvalues import cell_payload
from sheets.validation import Formula
from tests.conftest import run_in_thread
from tests.sheets.conftest import (
    PROJECT_TRACKER,
    other_user_client,
    sheet_id_named,
    smartsheet_stats,
)
from tests.sheets.edit_support import (
    change_in_smartsheet,
    column_named,
    remote_cell,
    rows_of,
)


def test_an_edit_is_written_to_smartsheet_the_mirror_and_the_journal(
    sandbox, tracker, editor, group_inbox, django_capture_on_commit_callbacks
):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[3]
    inbox = group_inbox(sheet_group(tracker.pk))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.cell_update(
            user=editor,
            sheet_id=tracker.pk,
            row_id=row.pk,
            column_id=notes.pk,
            text="Call the vendor",
            expected=row.value(notes.pk),
        )
    assert result.status == "applied", result.message
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Call the vendor"
    row.refresh_from_db()
    assert row.display(notes.pk) == "Call the vendor"
    edit = CellEdit.objects.get()
    assert (edit.user, edit.status, edit.source) == (editor, "applied", "grid")
    assert edit.new_value == "Call the vendor"
    assert edit.version is not None
    message = inbox.get()
    assert message["changed"] == [row.pk]


def test_numbers_stay_numbers_and_codes_stay_text(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    first, second = rows_of(tracker)[1:3]
    for row, text in ((first, "0"), (second, "007")):
        result = services.cell_update(
            user=editor,
            sheet_id=tracker.pk,
            row_id=row.pk,
            column_id=notes.pk,
            text=text,
            expected=row.value(notes.pk),
        )
        assert result.status == "applied", result.message
    assert remote_cell(sandbox, tracker, first.pk, notes)["value"] == 0
    assert remote_cell(sandbox, tracker, second.pk, notes)["value"] == "007"


def test_a_bad_value_writes_nothing_and_says_why(sandbox, tracker, editor):
    due = column_named(tracker, "Due")
    row = rows_of(tracker)[0]
    before = smartsheet_stats(sandbox)["requests"]
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=due.pk,
        text="next friday",
        expected=row.value(due.pk),
    )
    assert result.status == "invalid"
    assert result.message.startswith("Enter a date like")
    assert smartsheet_stats(sandbox)["requests"] == before
    assert not CellEdit.objects.exists()


def test_a_cell_changed_in_smartsheet_behind_a_stale_mirror_is_a_conflict(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[4]
    started_from = row.value(notes.pk)
    change_in_smartsheet(sandbox, tracker, row.pk, notes, "Pat's note")
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="Alice's note",
        expected=started_from,
    )
    assert result.status == "conflict"
    assert (result.theirs, result.theirs_display) == ("Pat's note", "Pat's note")
    assert result.theirs_by == "Pat Other"
    assert result.theirs_at is not None
    assert "changed by Pat Other" in result.message
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Pat's note"
    assert CellEdit.objects.get().status == "conflict"
    # The read told the mirror what Smartsheet holds, ahead of the webhook.
    row.refresh_from_db()
    assert row.value(notes.pk) == "Pat's note"


def test_a_cell_changed_with_a_fresh_mirror_is_a_conflict_too(sandbox, tracker, editor):
    status = column_named(tracker, "Status")
    row = rows_of(tracker)[5]
    started_from = row.value(status.pk)
    theirs = "Blocked" if started_from != "Blocked" else "Done"
    change_in_smartsheet(sandbox, tracker, row.pk, status, theirs)
    sync.sheet_sync(sheet_id=tracker.pk)
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=status.pk,
        text="In Progress" if theirs != "In Progress" else "Not Started",
        expected=started_from,
    )
    assert result.status == "conflict"
    assert result.theirs == theirs
    assert remote_cell(sandbox, tracker, row.pk, status)["value"] == theirs


def test_use_mine_writes_over_their_value_and_journals_what_it_replaced(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[6]
    started_from = row.value(notes.pk)
    change_in_smartsheet(sandbox, tracker, row.pk, notes, "Pat's note")
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="Mine",
        expected=started_from,
        force=True,
    )
    assert result.status == "applied"
    assert remote_cell(sandbox, tracker, row.pk, notes)["value"] == "Mine"
    assert (result.edit.old_value, result.edit.forced) == ("Pat's note", True)


def test_a_repeated_request_writes_once(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[7]
    started_from = row.value(notes.pk)
    kwargs = dict(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="Once",
        expected=started_from,
    )
    assert services.cell_update(**kwargs).status == "applied"
    writes = smartsheet_stats(sandbox)["routes"].get("PUT /sheets/{id}/rows", 0)
    assert services.cell_update(**kwargs).status == "unchanged"
    assert smartsheet_stats(sandbox)["routes"]["PUT /sheets/{id}/rows"] == writes == 1
    assert CellEdit.objects.count() == 1


def test_a_viewer_cannot_write_a_cell(sandbox, tracker, viewer, alice):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[0]
    for user in (viewer, alice):  # alice: no grant at all
        with pytest.raises(PermissionDenied):
            services.cell_update(
                user=user,
                sheet_id=tracker.pk,
                row_id=row.pk,
                column_id=notes.pk,
                text="x",
                expected=row.value(notes.pk),
            )
    assert smartsheet_stats(sandbox)["routes"].get("PUT /sheets/{id}/rows") is None
    assert Row.objects.get(pk=row.pk).cells == row.cells


def test_a_locked_column_is_refused_before_any_request(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    notes.locked = True
    notes.save()
    row = rows_of(tracker)[0]
    before = smartsheet_stats(sandbox)["requests"]
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="x",
        expected=row.value(notes.pk),
    )
    assert result.status == "invalid"
    assert "locked in Smartsheet" in result.message
    assert smartsheet_stats(sandbox)["requests"] == before


def test_an_unchecked_checkbox_smartsheet_reports_empty_is_no_conflict(sandbox, tracker, editor):
    done = column_named(tracker, "Done")
    row = next(r for r in rows_of(tracker) if r.value(done.pk) is False)
    change_in_smartsheet(sandbox, tracker, row.pk, done, "")  # empty: unchecked too
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=done.pk,
        text="true",
        expected=False,
    )
    assert result.status == "applied", result.message
    assert remote_cell(sandbox, tracker, row.pk, done)["value"] is True


def test_an_edit_waiting_for_smartsheet_is_listed_for_the_grid(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[0]
    sandbox.configure(smartsheet={"fail_rate": 1.0})
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="later",
        expected=row.value(notes.pk),
    )
    assert cell_edits_pending(sheet_id=tracker.pk, row_ids=[row.pk]) == {
        (row.pk, notes.pk): result.edit
    }


def test_values_are_sent_in_the_shape_smartsheet_takes_for_each_column_type():
    def col(type_, **fields):
        return Column(id=7, sheet_id=1, index=0, title="C", type=type_, **fields)

    free = col("PICKLIST", options=["A"], validation=False)
    assert cell_payload(free, "Other") == {"columnId": 7, "value": "Other", "strict": False}
    assert cell_payload(free, "A") == {"columnId": 7, "value": "A"}
    assert cell_payload(col("TEXT_NUMBER"), None) == {"columnId": 7, "value": ""}
    assert cell_payload(col("TEXT_NUMBER"), Formula("=1+1")) == {"columnId": 7, "formula": "=1+1"}
    assert cell_payload(col("MULTI_PICKLIST"), ["A", "B"]) == {
        "columnId": 7,
        "objectValue": {"objectType": "MULTI_PICKLIST", "values": ["A", "B"]},
    }
    assert cell_payload(col("MULTI_CONTACT_LIST"), ["a@x.io"]) == {
        "columnId": 7,
        "objectValue": {
            "objectType": "MULTI_CONTACT",
            "values": [{"objectType": "CONTACT", "email": "a@x.io"}],
        },
    }


@pytest.mark.django_db(transaction=True)
def test_two_people_saving_one_cell_at_once_get_one_write_and_one_conflict(sandbox, alice, staff):
    # Everything runs in threads of its own: committed data is what both savers must see, and a
    # browser test earlier in this process may have left an event loop in the main thread.
    def race() -> tuple[list, object]:
        sheet_id = sheet_id_named(sandbox, PROJECT_TRACKER)
        sync.sheets_discover(sheet_ids=[sheet_id])
        sync.sheet_sync(sheet_id=sheet_id)
        sheet = Sheet.objects.get(pk=sheet_id)
        SheetGrant.objects.create(sheet=sheet, user=alice, role="edit")
        notes = column_named(sheet, "Notes")
        row = rows_of(sheet)[8]
        # Slow answers, so without the edit lock both reads would see the old value.
        sandbox.configure(smartsheet={"latency_ms": 50})
        both_ready = threading.Barrier(2)

        def save(user, text):
            both_ready.wait()
            try:
                return services.cell_update(
                    user=user,
                    sheet_id=sheet.pk,
                    row_id=row.pk,
                    column_id=notes.pk,
                    text=text,
                    expected=row.value(notes.pk),
                )
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(save, [alice, staff], ["Alice's", "Carol's"]))
        connection.close()
        return results, remote_cell(sandbox, sheet, row.pk, notes)["value"]

    results, in_smartsheet = run_in_thread(race)
    assert sorted(r.status for r in results) == ["applied", "conflict"]
    winner = next(r for r in results if r.status == "applied")
    loser = next(r for r in results if r.status == "conflict")
    assert in_smartsheet == winner.edit.new_value
    assert loser.theirs == winner.edit.new_value


def test_a_row_deleted_in_smartsheet_is_reported_not_written(sandbox, tracker, editor):
    notes = column_named(tracker, "Notes")
    row = rows_of(tracker)[-1]
    other_user_client(sandbox).Sheets.delete_rows(tracker.pk, [row.pk])
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="x",
        expected=row.value(notes.pk),
    )
    assert result.status == "conflict"
    assert result.message == "This row no longer exists in Smartsheet; reload the sheet."
    assert "PUT /sheets/{id}/rows" not in smartsheet_stats(sandbox)["routes"]


def test_a_conflict_names_who_changed_that_cell_not_the_rows_last_editor(sandbox, tracker, editor):
    notes, status = column_named(tracker, "Notes"), column_named(tracker, "Status")
    row = rows_of(tracker)[11]
    started_from = row.value(notes.pk)
    change_in_smartsheet(sandbox, tracker, row.pk, notes, "Pat's note")
    # Then the owner's token (Sam Sandbox) changes another cell of the row.
    other_status = next(o for o in status.options if o != row.value(status.pk))
    other_user_client(sandbox, token="sandbox-token").Sheets.update_rows(
        tracker.pk,
        [
            smartsheet.models.Row(
                {"id": row.pk, "cells": [{"columnId": status.pk, "value": other_status}]}
            )
        ],
    )
    result = services.cell_update(
        user=editor,
        sheet_id=tracker.pk,
        row_id=row.pk,
        column_id=notes.pk,
        text="Mine",
        expected=started_from,
    )
    assert (result.status, result.theirs_by) == ("conflict", "Pat Other")
