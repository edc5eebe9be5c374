"""The demo's questions in one fresh chat (no sheet in context), against the sandbox model and
the mirror: listing sheets, filtering to a table, counting, setting a cell."""

from __future__ import annotations

import pytest

from chat import services
from chat.models import ChangeSet, Message
from sheets.models import Row, SheetGrant
from tests.chat.conftest import reply_to
from tests.sheets.edit_support import column_named

pytestmark = pytest.mark.django_db


def test_the_demo_questions_are_answered_with_the_right_tools(alice, tracker, ai, queued):
    SheetGrant.objects.create(sheet=tracker, user=alice, role="edit")
    status = column_named(tracker, "Status")
    rows = list(Row.objects.filter(sheet=tracker))
    blocked = sum(1 for r in rows if r.value(status.pk) == "Blocked")
    session = services.session_create(owner=alice)

    listing = reply_to(session, "What sheets do I have?")
    assert [c["name"] for c in listing.tool_calls] == ["list_sheets"]
    assert "Project Tracker" in listing.content

    table = reply_to(session, "Show rows where Status is Blocked in Project Tracker")
    assert [c["name"] for c in table.tool_calls][-1] == "query_rows"
    assert f"{blocked} rows match in Project Tracker" in table.content
    assert "| Blocked |" in table.content

    count = reply_to(session, "How many rows in Project Tracker are Blocked?")
    # No schema seen yet in this chat: the model reads it to learn that Blocked is a Status.
    assert [c["name"] for c in count.tool_calls] == ["get_sheet_schema", "aggregate"]
    assert count.tool_calls[1]["arguments"]["filters"] == [
        {"column": "Status", "op": "=", "value": "Blocked"}
    ]
    assert f"{blocked} rows where Status = Blocked" in count.content

    target = next(
        r for r in sorted(rows, key=lambda r: r.row_number) if r.value(status.pk) != "Done"
    )
    setting = reply_to(session, f"Set Status of row {target.row_number} to Done in Project Tracker")
    (change_set,) = setting.change_sets.all()
    assert change_set.tool == "update_cells" and change_set.status == ChangeSet.Status.PROPOSED
    assert "press Apply" in setting.content
    for reply in (listing, table, count, setting):
        assert reply.status == Message.Status.COMPLETE, reply.error
