"""Cell formulas through the SDK: stored and returned, computed, recomputed, errors as values."""

from __future__ import annotations

from tests.sandbox.smartsheet_support import (
    api_error,
    cells_of,
    client,
    column_ids,
    new_sheet,
    raw_row,
)

COLUMNS = [
    {"title": "Item", "type": "TEXT_NUMBER", "primary": True},
    {"title": "Qty", "type": "TEXT_NUMBER"},
    {"title": "Unit price", "type": "TEXT_NUMBER"},
    {"title": "Total", "type": "TEXT_NUMBER"},
    {"title": "Due", "type": "DATE"},
]


def order_sheet(sandbox):
    ss = client(sandbox)
    sid = new_sheet(ss, "Orders", COLUMNS)
    return ss, sid, column_ids(ss, sid)


def line(cols, item, qty, price, total="=[Qty]@row * [Unit price]@row"):
    return raw_row(
        [
            {"columnId": cols["Item"], "value": item},
            {"columnId": cols["Qty"], "value": qty},
            {"columnId": cols["Unit price"], "value": price},
            {"columnId": cols["Total"], "formula": total},
        ]
    )


def test_a_formula_cell_comes_back_with_its_formula_and_computed_value(sandbox):
    ss, sid, cols = order_sheet(sandbox)
    added = ss.Sheets.add_rows(sid, [line(cols, "Bolts", 3, 2.5)]).result[0]
    total = {c.column_id: c for c in added.cells}[cols["Total"]]
    assert (total.value, total.display_value) == (7.5, "7.5")
    assert total.formula == "=[Qty]@row * [Unit price]@row"
    read = cells_of(ss, sid, added.id)[cols["Total"]]
    assert (read.value, read.formula) == (7.5, "=[Qty]@row * [Unit price]@row")
    history = ss.Cells.get_cell_history(sid, added.id, cols["Total"], include_all=True).data
    assert [h.value for h in history] == [7.5]


def test_dependent_formulas_recompute_when_their_inputs_change(sandbox):
    ss, sid, cols = order_sheet(sandbox)
    bolts, nuts = ss.Sheets.add_rows(
        sid, [line(cols, "Bolts", 3, 2), line(cols, "Nuts", 10, 0.5)]
    ).result
    summary = ss.Sheets.add_rows(
        sid,
        [
            raw_row(
                [
                    {"columnId": cols["Item"], "formula": '="Lines: " + COUNT([Qty]:[Qty])'},
                    {"columnId": cols["Qty"], "formula": "=AVG([Unit price]:[Unit price])"},
                    {"columnId": cols["Total"], "formula": "=SUM([Total]:[Total])"},
                ]
            )
        ],
    ).result[0]
    cells = {c.column_id: c.value for c in summary.cells}
    assert cells[cols["Total"]] == "#CIRCULAR REFERENCE"  # it sums its own column
    assert cells[cols["Item"]] == "Lines: 3"
    assert cells[cols["Qty"]] == 1.25  # (2 + 0.5) / 2

    ss.Sheets.update_rows(sid, [raw_row([{"columnId": cols["Qty"], "value": 5}], id=bolts.id)])
    assert cells_of(ss, sid, bolts.id)[cols["Total"]].value == 10
    assert cells_of(ss, sid, nuts.id)[cols["Total"]].value == 5
    ss.Sheets.update_rows(
        sid, [raw_row([{"columnId": cols["Unit price"], "value": 4}], id=bolts.id)]
    )
    assert cells_of(ss, sid, summary.id)[cols["Qty"]].value == 2.25


def test_formula_errors_are_cell_values_as_in_smartsheet(sandbox):
    ss, sid, cols = order_sheet(sandbox)
    cases = {
        "=1 / ([Qty]@row - 3)": "#DIVIDE BY ZERO",
        "=[Item]@row * 2": "#INVALID OPERATION",
        "=[No such column]@row": "#UNPARSEABLE",
        "=MAX([Qty]:[Qty])": "#UNPARSEABLE",
        "=(1 + 2": "#UNPARSEABLE",
        "=[Unit price]@row + 1": 5,
    }
    rows = [
        raw_row(
            [
                {"columnId": cols["Item"], "value": "text"},
                {"columnId": cols["Qty"], "value": 3},
                {"columnId": cols["Unit price"], "value": 4},
                {"columnId": cols["Total"], "formula": formula},
            ]
        )
        for formula in cases
    ]
    added = ss.Sheets.add_rows(sid, rows).result
    values = [{c.column_id: c.value for c in r.cells}[cols["Total"]] for r in added]
    assert values == list(cases.values())
    dates = ss.Sheets.update_rows(
        sid,
        [
            raw_row([{"columnId": cols["Due"], "formula": "=1 + 1"}], id=added[0].id),
            raw_row([{"columnId": cols["Due"], "formula": '="2025-03-04"'}], id=added[1].id),
        ],
    ).result
    due = [{c.column_id: c.value for c in r.cells}[cols["Due"]] for r in dates]
    assert due == ["#INVALID COLUMN VALUE", "2025-03-04"]

    ss.Sheets.delete_column(sid, cols["Unit price"])
    assert cells_of(ss, sid, added[-1].id)[cols["Total"]].value == "#REF"


def test_a_cell_with_both_a_value_and_a_formula_is_refused(sandbox):
    ss, sid, cols = order_sheet(sandbox)
    both = raw_row([{"columnId": cols["Total"], "value": 20, "formula": "=1 + 1"}])
    error = api_error(lambda: ss.Sheets.add_rows(sid, [both]))
    assert (error.status_code, error.code) == (400, 1163)
    assert error.message.startswith("If cell.formula is specified, then value, objectValue")
    no_equals = raw_row([{"columnId": cols["Total"], "formula": "1 + 1"}])
    assert api_error(lambda: ss.Sheets.add_rows(sid, [no_equals])).code == 1162
    assert ss.Sheets.get_sheet(sid).total_row_count == 0
