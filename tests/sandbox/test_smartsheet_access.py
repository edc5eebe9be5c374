"""Who may write what: sharing levels, locked rows and columns, column validation, busy sheets."""

from __future__ import annotations

import threading

import smartsheet

from tests.conftest import wait_until
from tests.sandbox.smartsheet_support import (
    OTHER_TOKEN,
    api_error,
    cells_of,
    client,
    column_ids,
    new_sheet,
    raw_row,
    row,
    sheet_id,
)

NOT_AUTHORIZED = (403, 1004, "You are not authorized to perform this action.")


def tracker(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    return ss, sid, column_ids(ss, sid)


def shared_sheet(sandbox):
    """A sheet Sam creates (Pat is an editor of it) with one row, and both users' clients."""
    ss = client(sandbox)
    sid = new_sheet(
        ss,
        "Shared plan",
        [
            {"title": "Task", "type": "TEXT_NUMBER", "primary": True},
            {"title": "Notes", "type": "TEXT_NUMBER"},
            {"title": "Status", "type": "PICKLIST", "options": ["Open", "Done"]},
            {"title": "Due", "type": "DATE"},
            {"title": "Done", "type": "CHECKBOX"},
            {"title": "Owner", "type": "CONTACT_LIST"},
        ],
    )
    cols = column_ids(ss, sid)
    parent = ss.Sheets.add_rows(sid, [row({cols["Task"]: "Plan"})]).result[0]
    ss.Sheets.add_rows(sid, [row({cols["Task"]: "Step"}, parentId=parent.id)])
    return ss, client(sandbox, OTHER_TOKEN), sid, cols, parent.id


def test_the_second_token_views_support_tickets_and_administers_project_tracker(sandbox):
    pat = client(sandbox, OTHER_TOKEN)
    levels = {s.name: str(s.access_level) for s in pat.Sheets.list_sheets(include_all=True).data}
    assert levels == {
        "Customer Feedback": "EDITOR",
        "Project Tracker": "ADMIN",
        "Support Tickets": "VIEWER",
    }
    tickets = sheet_id(pat, "Support Tickets")
    tcols_ = column_ids(pat, tickets)
    assert pat.Sheets.get_sheet(tickets, page_size=1).total_row_count == 20000
    for write in (
        lambda: pat.Sheets.add_rows(tickets, [row({tcols_["Customer"]: "x"})]),
        lambda: pat.Sheets.delete_rows(tickets, [1]),
    ):
        error = api_error(write)
        assert (error.status_code, error.code, error.message) == NOT_AUTHORIZED

    tracker_id = sheet_id(pat, "Project Tracker")
    tcols = column_ids(pat, tracker_id)
    rename = smartsheet.models.Column({"title": "Renamed"})
    assert pat.Sheets.update_column(tracker_id, tcols["Notes"], rename).message == "SUCCESS"


def test_an_editor_writes_rows_but_not_the_sheets_structure(sandbox):
    _, pat, sid, cols, _ = shared_sheet(sandbox)
    assert pat.Sheets.add_rows(sid, [row({cols["Task"]: "ok"})]).message == "SUCCESS"
    rename = smartsheet.models.Column({"title": "Renamed"})
    for write in (
        lambda: pat.Sheets.update_column(sid, cols["Notes"], rename),
        lambda: pat.Sheets.delete_column(sid, cols["Notes"]),
        lambda: pat.Sheets.delete_sheet(sid),
    ):
        error = api_error(write)
        assert (error.status_code, error.code) == (403, 1004)


def test_a_locked_column_stops_editors_but_not_the_owner(sandbox):
    ss, pat, sid, cols, _ = shared_sheet(sandbox)
    ss.Sheets.update_column(sid, cols["Notes"], smartsheet.models.Column({"locked": True}))
    notes_as_seen = {
        who: {c.id: c for c in client_.Sheets.get_sheet(sid, page_size=1).columns}[cols["Notes"]]
        for who, client_ in (("owner", ss), ("pat", pat))
    }
    assert all(c.locked for c in notes_as_seen.values())
    assert (notes_as_seen["owner"].locked_for_user, notes_as_seen["pat"].locked_for_user) == (
        False,
        True,
    )
    target = ss.Sheets.get_sheet(sid, page_size=1).rows[0]
    error = api_error(
        lambda: pat.Sheets.update_rows(sid, [row({cols["Notes"]: "pat"}, id=target.id)])
    )
    assert (error.status_code, error.code) == (403, 1039)
    assert pat.Sheets.update_rows(sid, [row({cols["Task"]: "pat"}, id=target.id)]).message == (
        "SUCCESS"
    )
    ss.Sheets.update_rows(sid, [row({cols["Notes"]: "owner"}, id=target.id)])
    assert cells_of(ss, sid, target.id)[cols["Notes"]].value == "owner"


def test_a_locked_row_stops_editors_from_editing_or_deleting_it(sandbox):
    ss, pat, sid, cols, parent_id = shared_sheet(sandbox)
    target = ss.Sheets.get_row(sid, parent_id)
    child = ss.Sheets.get_sheet(sid).rows[1]
    locked = ss.Sheets.update_rows(sid, [raw_row([], id=child.id, locked=True)]).result[0]
    assert (locked.locked, locked.locked_for_user) == (True, False)
    seen_by_pat = pat.Sheets.get_row(sid, child.id)
    assert (seen_by_pat.locked, seen_by_pat.locked_for_user) == (True, True)
    same = pat.Sheets.update_rows(sid, [raw_row([], id=target.id, locked=False)])
    assert same.message == "SUCCESS"  # saying the unlocked parent stays unlocked is no change
    # Deleting the unlocked parent would delete its locked child too.
    delete = api_error(lambda: pat.Sheets.delete_rows(sid, [target.id]))
    assert (delete.status_code, delete.code) == (403, 1092)
    locked = ss.Sheets.update_rows(sid, [raw_row([], id=target.id, locked=True)]).result[0]
    assert locked.locked is True
    edit = api_error(lambda: pat.Sheets.update_rows(sid, [row({cols["Task"]: "x"}, id=target.id)]))
    assert (edit.status_code, edit.code, edit.message) == (
        403,
        1050,
        "You cannot edit a locked row.",
    )
    unlock = api_error(
        lambda: pat.Sheets.update_rows(sid, [raw_row([], id=target.id, locked=False)])
    )
    assert (unlock.status_code, unlock.code) == (403, 1004)
    ss.Sheets.update_rows(sid, [row({cols["Task"]: "owner"}, id=target.id)])
    assert cells_of(ss, sid, target.id)[cols["Task"]].value == "owner"


def test_column_validation_refuses_lenient_values_unless_an_admin_overrides_it(sandbox):
    ss, pat, sid, cols, _ = shared_sheet(sandbox)
    status = cols["Status"]

    def lenient(**extra):
        return [raw_row([{"columnId": status, "value": "Someday", "strict": False, **extra}])]

    free = ss.Sheets.add_rows(sid, lenient()).result[0]
    assert {c.column_id: c.value for c in free.cells}[status] == "Someday"

    ss.Sheets.update_column(sid, status, smartsheet.models.Column({"validation": True}))
    error = api_error(lambda: ss.Sheets.add_rows(sid, lenient()))
    assert (error.status_code, error.code) == (400, 1042)
    overridden = ss.Sheets.add_rows(sid, lenient(overrideValidation=True)).result[0]
    assert {c.column_id: c.value for c in overridden.cells}[status] == "Someday"
    refused = api_error(lambda: pat.Sheets.add_rows(sid, lenient(overrideValidation=True)))
    assert (refused.status_code, refused.code, refused.message) == (
        403,
        1212,
        "You must be a sheet admin to override validation.",
    )
    # Validation is per column: Due's is off, so lenient text is stored; once on, it is refused.
    soon = [raw_row([{"columnId": cols["Due"], "value": "soon", "strict": False}])]
    assert ss.Sheets.add_rows(sid, soon).message == "SUCCESS"
    for title, value in (("Due", "soon"), ("Done", "yes"), ("Owner", "nobody")):
        ss.Sheets.update_column(sid, cols[title], smartsheet.models.Column({"validation": True}))
        cell = {"columnId": cols[title], "value": value, "strict": False}
        error = api_error(lambda c=cell: ss.Sheets.add_rows(sid, [raw_row([c])]))
        assert (error.status_code, error.code) == (400, 1042), title


def _overlapping_write(sandbox, ss, sid, cols, target_id):
    """Start one slow write, and once the sandbox has it in flight, send a second one."""
    sandbox.configure(smartsheet={"latency_ms": 1500})
    first: dict = {}
    slow = threading.Thread(
        target=lambda: first.setdefault(
            "result", ss.Sheets.update_rows(sid, [row({cols["Notes"]: "1"}, id=target_id)])
        )
    )
    slow.start()

    def in_flight() -> bool:
        counters = sandbox.stats()["services"]["smartsheet"]["counters"]
        return counters.get("writes_started", 0) >= 1

    wait_until(in_flight, timeout=10, what="the first write to be in flight")
    again = client(sandbox, max_retry_time=0)  # the SDK would retry 4004 on its own
    try:
        second = again.Sheets.update_rows(sid, [row({cols["Notes"]: "2"}, id=target_id)])
    except smartsheet.exceptions.ApiError as exc:
        second = exc.error.result
    slow.join()
    return first["result"], second


def test_two_writes_to_one_sheet_at_once_get_4004_like_smartsheet(sandbox):
    ss, sid, cols = tracker(sandbox)
    target = ss.Sheets.get_sheet(sid, page_size=1).rows[0]
    first, second = _overlapping_write(sandbox, ss, sid, cols, target.id)
    assert first.message == "SUCCESS"
    assert (second.status_code, second.code) == (500, 4004)
    assert second.message == (
        f"Request failed because sheetId {sid} is currently being updated by another request "
        "that uses the same access token. Please retry your request once the previous request "
        "has completed."
    )
    counters = sandbox.stats()["services"]["smartsheet"]["counters"]
    assert counters["concurrent_write_errors"] == 1


def test_overlapping_writes_both_succeed_when_the_4004_is_turned_off(sandbox):
    sandbox.configure(smartsheet={"concurrent_write_error": False})
    ss, sid, cols = tracker(sandbox)
    target = ss.Sheets.get_sheet(sid, page_size=1).rows[0]
    first, second = _overlapping_write(sandbox, ss, sid, cols, target.id)
    assert (first.message, second.message) == ("SUCCESS", "SUCCESS")
