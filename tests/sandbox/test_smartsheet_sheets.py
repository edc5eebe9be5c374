"""Sheets, columns, users and server info through smartsheet-python-sdk, shaped as Smartsheet's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import smartsheet

from tests.sandbox.smartsheet_support import (
    OTHER_TOKEN,
    api_error,
    client,
    column_ids,
    create_sheet,
    row,
    sheet_id,
)


def test_it_answers_users_me_per_token(sandbox):
    assert client(sandbox).Users.get_current_user().email == "sandbox@example.com"
    other = client(sandbox, OTHER_TOKEN).Users.get_current_user()
    assert (other.email, other.first_name, other.last_name) == ("pat@example.com", "Pat", "Other")


def test_it_answers_serverinfo(sandbox):
    info = client(sandbox).Server.server_info()
    assert "en_US" in info.supported_locales


def test_it_rejects_missing_and_invalid_tokens(sandbox):
    missing = httpx.get(f"{sandbox.smartsheet_base}/users/me")
    assert missing.status_code == 401
    assert missing.json()["errorCode"] == 1001
    assert missing.json()["message"] == "An Access Token is required."
    assert missing.json()["refId"]
    error = api_error(lambda: client(sandbox, "wrong").Users.get_current_user())
    assert (error.status_code, error.code) == (401, 1002)
    assert error.message == "Your Access Token is invalid."


def test_it_lists_sheets_with_paging_and_versions(sandbox):
    ss = client(sandbox)
    first = ss.Sheets.list_sheets(page_size=2, page=1, include="sheetVersion")
    assert (first.total_count, first.total_pages, first.page_size) == (3, 2, 2)
    assert [s.name for s in first.data] == ["Customer Feedback", "Project Tracker"]
    assert all(s.version == 1 and s.access_level == "OWNER" for s in first.data)
    second = ss.Sheets.list_sheets(page_size=2, page=2)
    assert [s.name for s in second.data] == ["Support Tickets"]
    raw = httpx.get(
        f"{sandbox.smartsheet_base}/sheets", headers={"Authorization": "Bearer sandbox-token"}
    ).json()
    assert set(raw["data"][0]) == {
        "id",
        "name",
        "accessLevel",
        "permalink",
        "createdAt",
        "modifiedAt",
    }
    assert raw["data"][0]["createdAt"].endswith("Z")


def test_it_serves_the_whole_20000_row_sheet(sandbox):
    # Its speed is measured by benchmarks/sandbox.py. Passthrough goes through the SDK (auth,
    # retries) but skips its per-cell model objects, which cost ~1 ms per row in the SDK itself.
    ss = client(sandbox)
    sid = sheet_id(ss, "Support Tickets")
    sheet = ss.Passthrough.get(f"/sheets/{sid}").data
    assert sheet["totalRowCount"] == 20000 and len(sheet["rows"]) == 20000
    assert len(sheet["columns"]) == 20
    assert [r["rowNumber"] for r in sheet["rows"][:3]] == [1, 2, 3]
    assert all(len(r["cells"]) == 20 for r in sheet["rows"][:100])


def test_it_shapes_cells_like_smartsheet(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Support Tickets")
    sheet = ss.Passthrough.get(f"/sheets/{sid}", {"pageSize": 50}).data
    types = {c["id"]: c["type"] for c in sheet["columns"]}
    titles = {c["id"]: c["title"] for c in sheet["columns"]}
    cells = [cell for r in sheet["rows"] for cell in r["cells"]]
    for cell in cells:
        kind = types[cell["columnId"]]
        if "value" not in cell:
            assert cell == {"columnId": cell["columnId"]}
        elif kind in ("CHECKBOX", "DATE"):
            assert "displayValue" not in cell
        else:
            assert isinstance(cell["displayValue"], str)
        if kind == "CHECKBOX" and "value" in cell:
            assert isinstance(cell["value"], bool)
    hours = [c["value"] for c in cells if titles[c["columnId"]] == "Hours Spent"]
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in hours)
    assert any("value" not in c for c in cells if titles[c["columnId"]] == "Satisfaction")
    first = sheet["rows"][0]
    assert {"id", "sheetId", "rowNumber", "expanded", "createdAt", "modifiedAt"} <= set(first)
    primary = [c for c in sheet["columns"] if c.get("primary")]
    assert [c["title"] for c in primary] == ["Ticket"]
    assert [c["index"] for c in sheet["columns"]] == list(range(20))


def test_it_filters_columns_rows_and_pages(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    cols = column_ids(ss, sid)
    whole = ss.Sheets.get_sheet(sid)
    assert whole.total_row_count == 200 and len(whole.rows) == 200
    page = ss.Sheets.get_sheet(sid, page_size=10, page=2)
    assert [r.row_number for r in page.rows] == list(range(11, 21))
    narrow = ss.Sheets.get_sheet(sid, column_ids=[cols["Status"]], row_numbers=[1, 3])
    assert [c.title for c in narrow.columns] == ["Status"]
    assert [r.row_number for r in narrow.rows] == [1, 3]
    assert all([c.column_id for c in r.cells] == [cols["Status"]] for r in narrow.rows)
    picked = ss.Sheets.get_sheet(sid, row_ids=[whole.rows[5].id, whole.rows[2].id])
    assert [r.row_number for r in picked.rows] == [3, 6]
    sparse = ss.Sheets.get_sheet(sid, exclude="nonexistentCells", page_size=200)
    assert any(len(r.cells) < 6 for r in sparse.rows)


def test_it_keeps_parent_child_order_and_sibling_ids(sandbox):
    ss = client(sandbox)
    sheet = ss.Sheets.get_sheet(sheet_id(ss, "Project Tracker"), page_size=6)
    parent, first, second = sheet.rows[0], sheet.rows[1], sheet.rows[2]
    assert parent.parent_id is None and parent.cells[0].value == "Discovery"
    assert first.parent_id == parent.id and not first.sibling_id
    assert second.parent_id == parent.id and second.sibling_id == first.id


def test_it_answers_only_the_version_when_nothing_changed(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    version = ss.Sheets.get_sheet_version(sid).version
    headers = {"Authorization": "Bearer sandbox-token"}
    same = httpx.get(
        f"{sandbox.smartsheet_base}/sheets/{sid}?ifVersionAfter={version}", headers=headers
    )
    assert same.json() == {"version": version}
    cols = column_ids(ss, sid)
    ss.Sheets.add_rows(sid, [row({cols["Task"]: "New task"})])
    changed = ss.Sheets.get_sheet(sid, if_version_after=version)
    assert changed.version == version + 1 and len(changed.rows) == 201


def test_it_returns_rows_modified_since(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Customer Feedback")
    cols = column_ids(ss, sid)
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    target = ss.Sheets.get_sheet(sid, page_size=3).rows[2]
    before = datetime.now(UTC).replace(microsecond=0)  # Smartsheet stamps whole seconds
    ss.Sheets.update_rows(sid, [row({cols["Summary"]: "Billing issue"}, id=target.id)])
    recent = ss.Sheets.get_sheet(sid, rows_modified_since=since)
    assert [r.id for r in recent.rows] == [target.id]
    assert recent.total_row_count == 2000
    assert recent.rows[0].modified_at >= before


def test_it_creates_renames_and_deletes_a_sheet(sandbox):
    ss = client(sandbox)
    created = create_sheet(
        ss,
        {
            "name": "Launch plan",
            "columns": [
                {"title": "Item", "type": "TEXT_NUMBER", "primary": True},
                {"title": "Stage", "type": "PICKLIST", "options": ["Now", "Later"]},
            ],
        },
    )
    assert [c.title for c in created.columns] == ["Item", "Stage"]
    renamed = ss.Sheets.update_sheet(created.id, smartsheet.models.Sheet({"name": "Launch"}))
    assert renamed.result.name == "Launch"
    assert ss.Sheets.get_sheet(created.id).version == 2
    assert ss.Sheets.delete_sheet(created.id).message == "SUCCESS"
    error = api_error(lambda: ss.Sheets.get_sheet(created.id))
    assert (error.status_code, error.code, error.message) == (404, 1006, "Not Found")


def test_it_enforces_primary_column_rules_on_new_sheets(sandbox):
    ss = client(sandbox)

    def create(columns):
        return lambda: create_sheet(ss, {"name": "X", "columns": columns})

    text = {"title": "A", "type": "TEXT_NUMBER"}
    assert api_error(create([text])).code == 1055
    assert api_error(create([{**text, "primary": True}, {**text, "primary": False}])).code == 1056
    assert api_error(create([{"title": "D", "type": "DATE", "primary": True}])).code == 1057


def test_it_adds_updates_and_deletes_columns(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Customer Feedback")
    added = ss.Sheets.add_columns(
        sid, [smartsheet.models.Column({"title": "Score", "type": "TEXT_NUMBER", "index": 2})]
    ).result[0]
    assert added.index == 2
    assert ss.Sheets.get_column(sid, added.id).title == "Score"
    updated = ss.Sheets.update_column(
        sid,
        added.id,
        smartsheet.models.Column({"title": "Risk", "type": "PICKLIST", "options": ["Low", "High"]}),
    ).result
    assert (updated.title, str(updated.type), list(updated.options)) == (
        "Risk",
        "PICKLIST",
        ["Low", "High"],
    )
    duplicate = smartsheet.models.Column({"title": "Feedback", "type": "TEXT_NUMBER", "index": 0})
    assert api_error(lambda: ss.Sheets.add_columns(sid, [duplicate])).code == 1056
    ss.Sheets.delete_column(sid, added.id)
    assert added.id not in column_ids(ss, sid).values()
    assert api_error(lambda: ss.Sheets.get_column(sid, added.id)).code == 1006
    primary = column_ids(ss, sid)["Customer"]
    assert api_error(lambda: ss.Sheets.delete_column(sid, primary)).status_code == 400
