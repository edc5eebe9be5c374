"""The tool registry over the mirror: grants, filters, sorting, paging, aggregates in SQL, and
write tools that only propose."""

from __future__ import annotations

import json

import pytest

from chat.tools import TOOLS, Proposal, ToolContext, ToolError, tool_run, tool_specs
from sheets.models import Column, Row, Sheet, SheetGrant

pytestmark = pytest.mark.django_db

TEAMS = ["Web", "Data", "Ops"]


@pytest.fixture
def budget(alice) -> Sheet:
    """A mirrored sheet of 300 rows (more than any page): Item, Team (dropdown), Hours."""
    sheet = Sheet.objects.create(id=5000, name="Budget", row_count=300)
    item = Column.objects.create(
        id=1, sheet=sheet, index=0, title="Item", type="TEXT_NUMBER", primary=True
    )
    team = Column.objects.create(
        id=2, sheet=sheet, index=1, title="Team", type="PICKLIST", options=TEAMS
    )
    hours = Column.objects.create(id=3, sheet=sheet, index=2, title="Hours", type="TEXT_NUMBER")
    Row.objects.bulk_create(
        Row(
            id=10_000 + n,
            sheet=sheet,
            row_number=n + 1,
            cells={
                str(item.pk): {"value": f"Item {n}", "displayValue": f"Item {n}"},
                str(team.pk): {"value": TEAMS[n % 3], "displayValue": TEAMS[n % 3]},
                **({str(hours.pk): {"value": float(n % 7)}} if n % 10 else {}),
            },
        )
        for n in range(300)
    )
    SheetGrant.objects.create(sheet=sheet, user=alice, role="view")
    return sheet


def run(user, name: str, **arguments):
    return tool_run(name=name, arguments=arguments, context=ToolContext(user=user))


QUERY = {
    "filters": None,
    "search": None,
    "sort": None,
    "columns": None,
    "limit": None,
    "offset": None,
}


def test_every_tool_has_a_strict_compatible_schema_and_says_whether_it_writes():
    names = [spec["function"]["name"] for spec in tool_specs()]
    assert set(names) == {
        "list_sheets", "get_sheet_schema", "query_rows", "aggregate", "get_row", "update_cells",
        "add_rows", "delete_rows", "start_ai_job", "get_job", "cancel_job",
    }  # fmt: skip
    writes = {name for name, tool in TOOLS.items() if tool.writes}
    assert writes == {"update_cells", "add_rows", "delete_rows", "start_ai_job", "cancel_job"}

    def closed(schema):
        if "properties" in schema:
            assert schema["additionalProperties"] is False
            assert set(schema["required"]) == set(schema["properties"])
            for sub in schema["properties"].values():
                closed(sub)
        if "items" in schema:
            closed(schema["items"])

    for spec in tool_specs():
        closed(spec["function"]["parameters"])


def test_a_sheet_not_shared_with_me_reads_as_unknown(budget, bob):
    with pytest.raises(ToolError, match="No sheet with id 5000 is shared with you"):
        run(bob, "get_sheet_schema", sheet_id=5000)
    assert run(bob, "list_sheets", name_contains=None) == {"sheets": [], "total": 0}


def test_query_rows_filters_in_the_database_and_pages_compactly(budget, alice):
    found = run(
        alice,
        "query_rows",
        **{**QUERY, "filters": [{"column": "team", "op": "=", "value": "Data"}], "limit": 40},
        sheet_id=5000,
    )
    assert found["columns"] == ["row_id", "row_number", "Item", "Team", "Hours"]
    assert found["total"] == 100
    assert len(found["rows"]) == 40 and found["next_offset"] == 40
    assert found["rows"][0] == [10_001, 2, "Item 1", "Data", 1]
    following = run(
        alice,
        "query_rows",
        **{
            **QUERY,
            "filters": [{"column": "Team", "op": "=", "value": "Data"}],
            "limit": 40,
            "offset": 80,
        },
        sheet_id=5000,
    )
    assert len(following["rows"]) == 20 and following["next_offset"] is None


def test_query_rows_combines_conditions_sorts_and_picks_columns(budget, alice):
    found = run(
        alice,
        "query_rows",
        **{
            **QUERY,
            "filters": [
                {"column": "Team", "op": "=", "value": "Web"},
                {"column": "Hours", "op": ">=", "value": "5"},
            ],
            "sort": {"column": "Hours", "descending": True},
            "columns": ["Item", "Hours"],
        },
        sheet_id=5000,
    )
    assert found["columns"] == ["row_id", "row_number", "Item", "Hours"]
    hours = [row[3] for row in found["rows"]]
    assert hours == sorted(hours, reverse=True) and min(hours) >= 5
    expected = sum(1 for n in range(300) if n % 3 == 0 and n % 10 and n % 7 >= 5)
    assert found["total"] == expected


def test_query_rows_never_returns_more_than_a_hundred_rows(budget, alice):
    with pytest.raises(ToolError, match="limit"):
        run(alice, "query_rows", **{**QUERY, "limit": 500}, sheet_id=5000)
    found = run(alice, "query_rows", **{**QUERY, "limit": 100}, sheet_id=5000)
    assert len(found["rows"]) == 100 and found["total"] == 300


def test_an_unknown_column_is_refused_with_the_columns_to_use(budget, alice):
    with pytest.raises(ToolError, match="the columns are: Item, Team, Hours"):
        run(
            alice,
            "query_rows",
            **{**QUERY, "filters": [{"column": "Owner", "op": "=", "value": "x"}]},
            sheet_id=5000,
        )


def test_aggregates_cover_every_row_of_the_mirror(budget, alice):
    counted = run(
        alice, "aggregate", sheet_id=5000, operation="count", column=None, group_by=None,
        filters=[{"column": "Team", "op": "=", "value": "Ops"}],
    )  # fmt: skip
    assert counted["value"] == 100
    hours = [float(n % 7) for n in range(300) if n % 10]
    total = run(
        alice, "aggregate", sheet_id=5000, operation="sum", column="Hours", group_by=None,
        filters=None,
    )  # fmt: skip
    assert total["value"] == sum(hours)
    average = run(
        alice, "aggregate", sheet_id=5000, operation="avg", column="Hours", group_by=None,
        filters=None,
    )  # fmt: skip
    assert average["value"] == pytest.approx(sum(hours) / len(hours), abs=1e-3)
    grouped = run(
        alice, "aggregate", sheet_id=5000, operation="max", column="Hours", group_by="Team",
        filters=None,
    )  # fmt: skip
    assert {g["group"]: (g["value"], g["rows"]) for g in grouped["groups"]} == {
        "Web": (6, 100), "Data": (6, 100), "Ops": (6, 100),
    }  # fmt: skip
    with pytest.raises(ToolError, match="needs numbers"):
        run(
            alice, "aggregate", sheet_id=5000, operation="sum", column="Team", group_by=None,
            filters=None,
        )  # fmt: skip


def test_get_row_by_id_or_number(budget, alice):
    by_number = run(alice, "get_row", sheet_id=5000, row_id=None, row_number=3)
    assert by_number == {
        "sheet": "Budget", "row_id": 10_002, "row_number": 3,
        "cells": {"Item": "Item 2", "Team": "Ops", "Hours": 2},
    }  # fmt: skip
    assert run(alice, "get_row", sheet_id=5000, row_id=10_002, row_number=None) == by_number
    with pytest.raises(ToolError, match="no row with number 999"):
        run(alice, "get_row", sheet_id=5000, row_id=None, row_number=999)


def test_long_cells_are_cut_and_results_stay_small(budget, alice):
    row = Row.objects.get(pk=10_000)
    row.cells["1"] = {"value": "x" * 5000}
    row.save()
    found = run(alice, "query_rows", **{**QUERY, "limit": 100}, sheet_id=5000)
    assert len(found["rows"][0][2]) == 200
    assert len(json.dumps(found)) < 20_000


def test_a_write_tool_only_proposes_and_a_viewer_cannot_apply_it(budget, alice):
    before = Row.objects.get(pk=10_002).cells
    proposal = run(
        alice,
        "update_cells",
        sheet_id=5000,
        changes=[{"row_id": None, "row_number": 3, "column": "Team", "value": "Web"}],
    )
    assert isinstance(proposal, Proposal)
    assert proposal.preview["cells"] == [
        {
            "row_id": 10_002, "row_number": 3, "row": "row 3 (Item 2)", "column_id": 2,
            "column": "Team", "old": "Ops", "old_display": "Ops", "new": "Web",
        }
    ]  # fmt: skip
    assert "can view" in proposal.blocked  # alice holds a view grant only
    assert Row.objects.get(pk=10_002).cells == before


def test_a_value_the_column_refuses_is_refused_before_any_proposal(budget, alice):
    SheetGrant.objects.filter(sheet=budget, user=alice).update(role="edit")
    Column.objects.filter(pk=2).update(validation=True)  # only its options are allowed
    with pytest.raises(ToolError, match="Team"):
        run(
            alice,
            "update_cells",
            sheet_id=5000,
            changes=[{"row_id": None, "row_number": 3, "column": "Team", "value": "Legal"}],
        )
