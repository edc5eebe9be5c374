"""Row writes, locations, strict types, partial success, deletes and cell history via the SDK."""

from __future__ import annotations

import smartsheet

from tests.sandbox.smartsheet_support import (
    OTHER_TOKEN,
    api_error,
    client,
    column_ids,
    row,
    sheet_id,
)


def tracker(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    return ss, sid, column_ids(ss, sid)


def test_it_adds_rows_at_the_bottom_and_bumps_the_version(sandbox):
    ss, sid, cols = tracker(sandbox)
    result = ss.Sheets.add_rows(
        sid, [row({cols["Task"]: "Ship it", cols["Done"]: True, cols["Due"]: "2025-07-01"})]
    )
    assert result.message == "SUCCESS" and result.version == 2
    added = result.result[0]
    assert added.row_number == 201 and added.sheet_id == sid
    cells = {c.column_id: c for c in added.cells}
    assert cells[cols["Task"]].display_value == "Ship it"
    assert cells[cols["Done"]].value is True and cells[cols["Done"]].display_value is None
    assert cells[cols["Notes"]].value is None
    assert ss.Sheets.get_row(sid, added.id).row_number == 201


def test_it_places_rows_by_location(sandbox):
    ss, sid, cols = tracker(sandbox)
    rows = ss.Sheets.get_sheet(sid, page_size=3).rows
    parent, child = rows[0], rows[1]
    top = ss.Sheets.add_rows(sid, [row({cols["Task"]: "First"}, toTop=True)]).result[0]
    assert top.row_number == 1
    first_child = ss.Sheets.add_rows(
        sid, [row({cols["Task"]: "Kickoff"}, parentId=parent.id, toTop=True)]
    ).result[0]
    assert first_child.parent_id == parent.id and first_child.row_number == 3
    above = ss.Sheets.add_rows(
        sid, [row({cols["Task"]: "Prep"}, siblingId=child.id, above=True)]
    ).result[0]
    assert above.parent_id == parent.id
    order = [r.id for r in ss.Sheets.get_sheet(sid, page_size=6).rows]
    assert order[:5] == [top.id, parent.id, first_child.id, above.id, child.id]
    moved = ss.Sheets.update_rows(sid, [row(id=top.id, toBottom=True)]).result[0]
    assert moved.row_number == ss.Sheets.get_sheet(sid).total_row_count


def test_it_rejects_bad_and_mixed_locations(sandbox):
    ss, sid, cols = tracker(sandbox)
    task = cols["Task"]
    mixed = [row({task: "a"}, toTop=True), row({task: "b"}, toBottom=True)]
    assert api_error(lambda: ss.Sheets.add_rows(sid, mixed)).code == 1123
    both = [row({task: "a"}, toTop=True, toBottom=True)]
    assert api_error(lambda: ss.Sheets.add_rows(sid, both)).code == 1062
    assert api_error(lambda: ss.Sheets.add_rows(sid, [row({task: "a"}, parentId=42)])).code == 1063
    error = api_error(lambda: ss.Sheets.add_rows(sid, [row({task: "a"}, siblingId=42)]))
    assert (error.status_code, error.code, error.message) == (400, 1064, "Invalid siblingId: 42.")


def test_it_enforces_strict_types_per_column(sandbox):
    ss, sid, cols = tracker(sandbox)
    for title, value in [
        ("Due", "next Tuesday"),
        ("Due", "2025-02-30"),
        ("Done", "yes"),
        ("Status", "Someday"),
        ("Owner", "not an email"),
    ]:
        error = api_error(lambda t=title, v=value: ss.Sheets.add_rows(sid, [row({cols[t]: v})]))
        assert (error.status_code, error.code) == (400, 1042), title
        assert "did not conform to the strict requirements" in error.message
    relaxed = smartsheet.models.Row(
        {"cells": [{"columnId": cols["Due"], "value": "next Tuesday", "strict": False}]}
    )
    stored = ss.Sheets.add_rows(sid, [relaxed]).result[0]
    assert {c.column_id: c.value for c in stored.cells}[cols["Due"]] == "next Tuesday"


def test_it_rejects_invalid_cells(sandbox):
    ss, sid, cols = tracker(sandbox)
    too_long = api_error(lambda: ss.Sheets.add_rows(sid, [row({cols["Notes"]: "x" * 4001})]))
    assert too_long.code == 1041 and "4000" in too_long.message
    assert api_error(lambda: ss.Sheets.add_rows(sid, [row({123: "x"})])).code == 1036
    twice = smartsheet.models.Row(
        {
            "cells": [
                {"columnId": cols["Task"], "value": "a"},
                {"columnId": cols["Task"], "value": "b"},
            ]
        }
    )
    assert api_error(lambda: ss.Sheets.add_rows(sid, [twice])).code == 1037
    missing_id = api_error(lambda: ss.Sheets.update_rows(sid, [row({cols["Task"]: "x"})]))
    assert (missing_id.code, missing_id.message) == (
        1012,
        "A required object attribute is missing from your request: row.id.",
    )
    too_many = [row({cols["Task"]: f"t{i}"}) for i in range(501)]
    assert api_error(lambda: ss.Sheets.add_rows(sid, too_many)).status_code == 400
    assert ss.Sheets.get_sheet_version(sid).version == 1


def test_it_refuses_writes_to_system_columns(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Support Tickets")
    created = column_ids(ss, sid)["Created"]
    error = api_error(lambda: ss.Sheets.add_rows(sid, [row({created: "2025-01-01T00:00:00Z"})]))
    assert (error.code, error.status_code) == (1046, 400)


def test_it_allows_partial_success(sandbox):
    ss, sid, cols = tracker(sandbox)
    rows = [row({cols["Task"]: "good"}), row({cols["Done"]: "nope"}), row({cols["Task"]: "fine"})]
    result = ss.Sheets.add_rows_with_partial_success(sid, rows)
    assert (result.message, result.result_code) == ("PARTIAL_SUCCESS", 3)
    assert [r.cells[0].value for r in result.result] == ["good", "fine"]
    [failed] = result.failed_items
    assert failed.index == 1 and failed.error.error_code == 1042
    whole = api_error(lambda: ss.Sheets.add_rows(sid, rows))
    assert whole.code == 1042
    assert ss.Sheets.get_sheet(sid).total_row_count == 202


def test_it_updates_cells_and_clears_them(sandbox):
    ss, sid, cols = tracker(sandbox)
    target = ss.Sheets.get_sheet(sid, page_size=10).rows[9]
    updated = ss.Sheets.update_rows(
        sid, [row({cols["Notes"]: "", cols["Task"]: 42, cols["Status"]: "Blocked"}, id=target.id)]
    ).result[0]
    cells = {c.column_id: c for c in updated.cells}
    assert cells[cols["Notes"]].value is None
    assert cells[cols["Task"]].value == 42 and cells[cols["Task"]].display_value == "42"
    assert updated.modified_at > target.modified_at
    unknown = api_error(lambda: ss.Sheets.update_rows(sid, [row({cols["Task"]: "x"}, id=1)]))
    assert (unknown.status_code, unknown.code) == (404, 1006)


def test_it_deletes_rows_with_their_children(sandbox):
    ss, sid, _ = tracker(sandbox)
    rows = ss.Sheets.get_sheet(sid, page_size=6).rows
    parent = rows[0]
    children = [r.id for r in rows if r.parent_id == parent.id]
    assert api_error(lambda: ss.Sheets.delete_rows(sid, [parent.id, 1])).code == 1006
    assert ss.Sheets.get_sheet(sid).total_row_count == 200
    deleted = ss.Sheets.delete_rows(sid, [parent.id, 1], ignore_rows_not_found=True)
    assert {v.value for v in deleted.result} == {parent.id, *children}
    sheet = ss.Sheets.get_sheet(sid)
    assert sheet.total_row_count == 200 - 1 - len(children)
    assert [r.row_number for r in sheet.rows] == list(range(1, sheet.total_row_count + 1))


def test_it_records_cell_history_newest_first_with_the_writer(sandbox):
    ss, sid, cols = tracker(sandbox)
    other = client(sandbox, OTHER_TOKEN)
    target = ss.Sheets.get_sheet(sid, page_size=1).rows[0]
    ss.Sheets.update_rows(sid, [row({cols["Notes"]: "first"}, id=target.id)])
    other.Sheets.update_rows(sid, [row({cols["Notes"]: "second"}, id=target.id)])
    history = ss.Cells.get_cell_history(sid, target.id, cols["Notes"], include_all=True).data
    assert [h.value for h in history][:2] == ["second", "first"]
    assert history[0].modified_by.email == "pat@example.com"
    assert history[1].modified_by.email == "sandbox@example.com"
    assert history[0].modified_at >= history[1].modified_at
    stats = sandbox.stats()["services"]["smartsheet"]
    assert stats["routes"]["GET /sheets/{id}/rows/{rowId}/columns/{columnId}/history"] == 1
    assert stats["tokens"]["sandbox-token"]["peak_rpm"] >= 10  # history counts 10
