"""Cell values as Smartsheet parses them: null clears, strict text, objectValue, level, refusals."""

from __future__ import annotations

import smartsheet
from smartsheet.models import ExplicitNull

from tests.sandbox.smartsheet_support import (
    api_error,
    cells_of,
    client,
    column_ids,
    new_sheet,
    raw_row,
    row,
    sheet_id,
)


def tracker(sandbox):
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    return ss, sid, column_ids(ss, sid)


def test_a_null_value_clears_the_cell(sandbox):
    ss, sid, cols = tracker(sandbox)
    target = ss.Sheets.get_sheet(sid, page_size=1).rows[0]
    ss.Sheets.update_rows(sid, [row({cols["Notes"]: "keep me"}, id=target.id)])
    ss.Sheets.update_rows(
        sid, [raw_row([{"columnId": cols["Notes"], "value": ExplicitNull()}], id=target.id)]
    )
    assert cells_of(ss, sid, target.id)[cols["Notes"]].value is None
    history = ss.Cells.get_cell_history(sid, target.id, cols["Notes"], include_all=True).data
    assert [h.value for h in history][:2] == [None, "keep me"]


def test_strict_text_stays_text_and_lenient_numeric_text_becomes_a_number(sandbox):
    ss, sid, cols = tracker(sandbox)
    notes = cols["Notes"]
    added = ss.Sheets.add_rows(
        sid,
        [
            raw_row([{"columnId": notes, "value": "0"}]),
            raw_row([{"columnId": notes, "value": 7}]),
            raw_row([{"columnId": notes, "value": "0", "strict": False}]),
            raw_row([{"columnId": notes, "value": "007", "strict": False}]),
        ],
    ).result
    values = [{c.column_id: c.value for c in r.cells}[notes] for r in added]
    assert values == ["0", 7, 0, "007"]
    assert [type(v) for v in values] == [str, int, int, str]


def test_adding_a_row_records_one_history_entry_per_cell(sandbox):
    ss, sid, cols = tracker(sandbox)
    added = ss.Sheets.add_rows(sid, [row({cols["Task"]: "New", cols["Notes"]: "n"})]).result[0]
    for title in ("Task", "Notes"):
        history = ss.Cells.get_cell_history(sid, added.id, cols[title], include_all=True).data
        assert len(history) == 1, title


def test_multi_picklist_reads_as_text_unless_the_level_asks_for_it(sandbox):
    ss = client(sandbox)
    sid = new_sheet(
        ss,
        "Tagged",
        [
            {"title": "Name", "type": "TEXT_NUMBER", "primary": True},
            {"title": "Tags", "type": "MULTI_PICKLIST", "options": ["red", "green", "blue"]},
        ],
    )
    cols = column_ids(ss, sid)
    tags = {"objectType": "MULTI_PICKLIST", "values": ["red", "blue"]}
    added = ss.Sheets.add_rows(
        sid,
        [
            raw_row(
                [
                    {"columnId": cols["Name"], "value": "a"},
                    {"columnId": cols["Tags"], "objectValue": tags},
                ]
            )
        ],
    ).result[0]

    plain = ss.Sheets.get_sheet(sid)
    assert {c.title: str(c.type) for c in plain.columns}["Tags"] == "TEXT_NUMBER"
    cell = {c.column_id: c for c in plain.rows[0].cells}[cols["Tags"]]
    assert cell.value == "red, blue" and cell.object_value is None

    full = ss.Sheets.get_sheet(sid, level=2, include="objectValue")
    assert {c.title: str(c.type) for c in full.columns}["Tags"] == "MULTI_PICKLIST"
    cell = cells_of(ss, sid, added.id, level=2, include="objectValue")[cols["Tags"]]
    assert cell.object_value.to_dict() == tags


def test_object_values_write_contacts_and_dates_and_are_checked(sandbox):
    ss, sid, cols = tracker(sandbox)
    added = ss.Sheets.add_rows(
        sid,
        [
            raw_row(
                [
                    {"columnId": cols["Task"], "value": "Call"},
                    {
                        "columnId": cols["Owner"],
                        "objectValue": {"objectType": "CONTACT", "email": "pat@example.com"},
                    },
                    {
                        "columnId": cols["Due"],
                        "objectValue": {"objectType": "DATE", "value": "2025-03-04"},
                    },
                ]
            )
        ],
    ).result[0]
    cells = {c.column_id: c for c in added.cells}
    assert (cells[cols["Owner"]].value, cells[cols["Owner"]].display_value) == (
        "pat@example.com",
        "Pat Other",
    )
    assert cells[cols["Due"]].value == "2025-03-04"
    read = cells_of(ss, sid, added.id, include="objectValue")
    assert read[cols["Owner"]].object_value.to_dict() == {
        "objectType": "CONTACT",
        "email": "pat@example.com",
        "name": "Pat Other",
    }
    assert read[cols["Task"]].object_value.value == "Call"
    both = raw_row([{"columnId": cols["Task"], "value": "x", "objectValue": "x"}])
    assert api_error(lambda: ss.Sheets.add_rows(sid, [both])).code == 1130
    picklist = {"objectType": "MULTI_PICKLIST", "values": ["x"]}
    wrong = raw_row([{"columnId": cols["Owner"], "objectValue": picklist}])
    assert api_error(lambda: ss.Sheets.add_rows(sid, [wrong])).code == 1131


def test_attributes_the_sandbox_does_not_store_are_refused_not_dropped(sandbox):
    ss, sid, cols = tracker(sandbox)
    for cell in (
        {"columnId": cols["Task"], "value": "x", "format": ",,1,,,,,,,,,,,,,,"},
        {"columnId": cols["Task"], "value": "x", "hyperlink": {"url": "https://example.com"}},
    ):
        error = api_error(lambda c=cell: ss.Sheets.add_rows(sid, [raw_row([c])]))
        assert (error.status_code, error.code) == (400, 1032), cell
    error = api_error(lambda: ss.Sheets.add_rows(sid, [raw_row([], format=",,1")]))
    assert (error.code, error.message) == (
        1032,
        "The attribute(s) row.format are not allowed for this operation.",
    )
    for column in (
        {"title": "Star", "type": "CHECKBOX", "symbol": "STAR", "index": 1},
        {"title": "Calc", "type": "TEXT_NUMBER", "formula": "=1", "index": 1},
        {"title": "Made", "type": "DATETIME", "systemColumnType": "CREATED_DATE", "index": 1},
    ):
        model = smartsheet.models.Column(column)
        assert api_error(lambda m=model: ss.Sheets.add_columns(sid, [m])).code == 1032
    assert len(ss.Sheets.get_columns(sid, include_all=True).data) == len(cols)


def test_a_row_read_back_and_written_unchanged_is_accepted(sandbox):
    ss, sid, cols = tracker(sandbox)
    read = ss.Sheets.get_row(sid, ss.Sheets.get_sheet(sid, page_size=1).rows[0].id)
    for cell in read.cells:
        if cell.column_id == cols["Notes"]:
            cell.value = "edited"
    result = ss.Sheets.update_rows(sid, [read])
    assert result.message == "SUCCESS"
    assert cells_of(ss, sid, read.id)[cols["Notes"]].value == "edited"


def test_sheet_settings_the_sandbox_does_not_store_are_refused(sandbox):
    ss, sid, _ = tracker(sandbox)
    settings = smartsheet.models.Sheet(
        {"name": "Tracker", "userSettings": {"criticalPathEnabled": True}}
    )
    error = api_error(lambda: ss.Sheets.update_sheet(sid, settings))
    assert (error.status_code, error.code) == (400, 1032)
    assert ss.Sheets.get_sheet(sid, page_size=1).name == "Project Tracker"
