from __future__ import annotations

import smartsheet
from django.core.management import call_command

from sheets import store, sync, tasks
from sheets.events import sheet_group
from sheets.models import Column, Row, Sheet
from tests.conftest import run_in_thread
from tests.sheets.conftest import other_user_client, run_sent_syncs, smartsheet_stats


def _leaf_rows(sheet: Sheet) -> list[Row]:
    parents = set(
        Row.objects.filter(sheet=sheet).exclude(parent_id=None).values_list("parent_id", flat=True)
    )
    return [
        r for r in Row.objects.filter(sheet=sheet).order_by("row_number") if r.pk not in parents
    ]


def _primary(sheet: Sheet) -> Column:
    return Column.objects.get(sheet=sheet, primary=True)


def test_a_full_sync_mirrors_every_row_and_column_as_smartsheet_has_them(sandbox, tracker):
    remote = other_user_client(sandbox, token="sandbox-token").Sheets.get_sheet(tracker.pk)
    assert tracker.version == remote.version
    assert tracker.row_count == remote.total_row_count == Row.objects.filter(sheet=tracker).count()
    assert tracker.sync_state == Sheet.SyncState.OK
    assert list(Column.objects.filter(sheet=tracker).values_list("title", flat=True)) == [
        c.title for c in remote.columns
    ]
    for remote_row in remote.rows[:20]:
        mirrored = Row.objects.get(pk=remote_row.id)
        assert mirrored.row_number == remote_row.row_number
        assert mirrored.parent_id == (remote_row.parent_id or None)
        for cell in remote_row.cells:
            assert mirrored.value(cell.column_id) == cell.value
            if cell.display_value is not None:
                assert mirrored.display(cell.column_id) == cell.display_value


def test_an_unchanged_sheet_costs_one_small_call(sandbox, tracker):
    before = smartsheet_stats(sandbox)["routes"]
    result = sync.sheet_sync(sheet_id=tracker.pk)
    after = smartsheet_stats(sandbox)["routes"]
    assert result.kind == "unchanged"
    assert result.calls == 1
    assert sum(after.values()) - sum(before.values()) == 1
    # GET /sheets/{id}?ifVersionAfter=…: an unchanged sheet answers with its version alone.
    assert after["GET /sheets/{id}"] == before.get("GET /sheets/{id}", 0) + 1


def test_an_incremental_sync_picks_up_edits_additions_and_deletions_and_announces_them(
    sandbox, tracker, group_inbox, django_capture_on_commit_callbacks
):
    other = other_user_client(sandbox)
    primary = _primary(tracker)
    leaves = _leaf_rows(tracker)
    edited, doomed = leaves[0], leaves[-1]
    other.Sheets.update_rows(
        tracker.pk,
        [
            smartsheet.models.Row(
                {"id": edited.pk, "cells": [{"columnId": primary.pk, "value": "Renamed by Pat"}]}
            )
        ],
    )
    added = other.Sheets.add_rows(
        tracker.pk,
        [
            smartsheet.models.Row(
                {"toTop": True, "cells": [{"columnId": primary.pk, "value": "New task"}]}
            )
        ],
    ).result[0]
    other.Sheets.delete_rows(tracker.pk, [doomed.pk])
    inbox = group_inbox(sheet_group(tracker.pk))

    with django_capture_on_commit_callbacks() as announcements:
        result = sync.sheet_sync(sheet_id=tracker.pk)
    for announce in announcements:
        run_in_thread(announce)  # a browser test may have left an event loop in this thread

    assert result.kind == "incremental"
    assert (result.changed, result.added, result.deleted) == ([edited.pk], [added.id], [doomed.pk])
    assert result.calls <= 3  # version, modified rows, id list
    assert Row.objects.get(pk=edited.pk).value(primary.pk) == "Renamed by Pat"
    assert Row.objects.get(pk=added.id).row_number == 1
    assert not Row.objects.filter(pk=doomed.pk).exists()
    remote = other.Sheets.get_sheet(tracker.pk, page_size=1)
    tracker.refresh_from_db()
    assert tracker.version == remote.version
    assert tracker.row_count == remote.total_row_count == Row.objects.filter(sheet=tracker).count()
    # Rows below the inserted one moved down in the mirror too.
    numbers = list(
        Row.objects.filter(sheet=tracker)
        .order_by("row_number")
        .values_list("row_number", flat=True)
    )
    assert numbers == list(range(1, remote.total_row_count + 1))
    assert inbox.get() == {
        "type": "sheet.changed",
        "sheet_id": tracker.pk,
        "version": remote.version,
        "changed": [edited.pk],
        "added": [added.id],
        "deleted": [doomed.pk],
        "reload": False,
    }


def test_an_edit_alone_is_synced_without_listing_every_row(sandbox, tracker):
    other = other_user_client(sandbox)
    primary = _primary(tracker)
    row = _leaf_rows(tracker)[3]
    other.Sheets.update_rows(
        tracker.pk,
        [
            smartsheet.models.Row(
                {"id": row.pk, "cells": [{"columnId": primary.pk, "value": "Edited"}]}
            )
        ],
    )
    result = sync.sheet_sync(sheet_id=tracker.pk)
    assert (result.kind, result.changed, result.calls) == ("incremental", [row.pk], 1)
    assert Row.objects.get(pk=row.pk).value(primary.pk) == "Edited"


def test_column_changes_refresh_the_columns_and_resync_every_row(
    sandbox, tracker, group_inbox, django_capture_on_commit_callbacks
):
    other = other_user_client(sandbox)
    renamed = Column.objects.filter(sheet=tracker, primary=False).order_by("index").first()
    other.Sheets.update_column(
        tracker.pk, renamed.pk, smartsheet.models.Column({"title": "Renamed column"})
    )
    new = other.Sheets.add_columns(
        tracker.pk, [smartsheet.models.Column({"title": "Risk", "type": "TEXT_NUMBER", "index": 1})]
    ).result[0]
    dropped = Column.objects.filter(sheet=tracker, primary=False).order_by("-index").first()
    other.Sheets.delete_column(tracker.pk, dropped.pk)
    inbox = group_inbox(sheet_group(tracker.pk))

    with django_capture_on_commit_callbacks() as announcements:
        result = sync.sheet_sync(sheet_id=tracker.pk)
    for announce in announcements:
        run_in_thread(announce)  # a browser test may have left an event loop in this thread

    assert result.kind == "full"
    remote = other.Sheets.get_sheet(tracker.pk, page_size=1)
    assert list(Column.objects.filter(sheet=tracker).values_list("pk", "title", "index")) == [
        (c.id, c.title, c.index) for c in remote.columns
    ]
    assert Column.objects.get(pk=new.id).title == "Risk"
    assert Column.objects.get(pk=renamed.pk).title == "Renamed column"
    assert not Row.objects.filter(sheet=tracker, cells__has_key=str(dropped.pk)).exists()
    assert inbox.get()["reload"] is True


def test_polling_syncs_sheets_whose_webhook_is_not_enabled(sandbox, tracker, sent_syncs):
    other = other_user_client(sandbox)
    primary = _primary(tracker)
    row = _leaf_rows(tracker)[0]
    other.Sheets.update_rows(
        tracker.pk,
        [
            smartsheet.models.Row(
                {"id": row.pk, "cells": [{"columnId": primary.pk, "value": "Polled"}]}
            )
        ],
    )
    Sheet.objects.filter(pk=tracker.pk).update(webhook_status="ENABLED")
    tasks.sheets_poll()  # the beat task, run directly; it only sends sync tasks
    assert sent_syncs == []  # synced moments ago, with a live webhook: not due

    Sheet.objects.filter(pk=tracker.pk).update(webhook_status="DISABLED_CALLBACK_FAILED")
    tasks.sheets_poll()
    assert [s["sheet_id"] for s in sent_syncs] == [tracker.pk]
    assert Row.objects.get(pk=row.pk).value(primary.pk) != "Polled"
    assert run_sent_syncs(sent_syncs) == ["incremental: 0 added, 1 updated, 0 deleted"]
    assert Row.objects.get(pk=row.pk).value(primary.pk) == "Polled"


def test_a_second_sync_of_the_same_sheet_waits_or_steps_aside(sandbox, tracker):
    from django.conf import settings

    from core.ratelimit import redis_client

    lock = redis_client().lock(f"{settings.REDIS_PREFIX}:sheets:sync:{tracker.pk}", timeout=5)
    assert lock.acquire(blocking=False)
    try:
        assert sync.sheet_sync(sheet_id=tracker.pk, wait=0).kind == "skipped"
    finally:
        lock.release()
    assert sync.sheet_sync(sheet_id=tracker.pk, wait=0).kind == "unchanged"


def test_discovery_finds_every_sheet_and_grants_them_to_the_demo_user(
    sandbox, db, django_user_model, settings
):
    settings.SMARTSHEET_SANDBOX = True
    demo = django_user_model.objects.create_user(settings.DEMO_USER, password="x")
    sheets = sync.sheets_discover()
    assert sorted(s.name for s in sheets) == [
        "Customer Feedback",
        "Project Tracker",
        "Support Tickets",
    ]
    assert {g.sheet for g in demo.sheet_grants.all()} == set(sheets)
    assert {g.role for g in demo.sheet_grants.all()} == {"edit"}


def test_sync_sheets_reports_a_summary_and_costs_one_call_per_unchanged_sheet(
    sandbox, tracker, capsys
):
    Row.objects.filter(sheet=tracker).order_by("-row_number").first().delete()
    call_command("sync_sheets", str(tracker.pk), "--full")
    out = capsys.readouterr().out
    assert "1 of 1 sheets synced: 1 rows added, 0 updated, 0 deleted" in out
    tracker.refresh_from_db()
    assert f"The mirror holds {tracker.row_count:,} rows of these sheets." in out

    call_command("sync_sheets")
    out = capsys.readouterr().out
    assert "unchanged" in out
    assert "1 Smartsheet calls" in out


def test_sheets_status_prints_json_from_the_mirror_alone(sandbox, tracker, capsys):
    import json

    calls = smartsheet_stats(sandbox)["requests"]
    call_command("sheets_status", "--json")
    [status] = json.loads(capsys.readouterr().out)
    assert {k: status[k] for k in ("id", "name", "version", "rows", "webhook_status")} == {
        "id": tracker.pk,
        "name": "Project Tracker",
        "version": tracker.version,
        "rows": tracker.row_count,
        "webhook_status": None,
    }
    assert status["synced_at"] == tracker.synced_at.isoformat()
    assert smartsheet_stats(sandbox)["requests"] == calls


def test_a_full_sync_pages_through_the_sheet_and_a_repeat_changes_nothing(
    sandbox, tracker, settings
):
    settings.SHEETS_SYNC_PAGE_SIZE = 7
    expected = {
        pk: (n, cells) for pk, n, cells in Row.objects.values_list("pk", "row_number", "cells")
    }
    Row.objects.filter(sheet=tracker).delete()
    pages_before = smartsheet_stats(sandbox)["routes"].get("GET /sheets/{id}", 0)

    result = sync.sheet_sync(sheet_id=tracker.pk, full=True)

    pages = -(-tracker.row_count // 7)
    assert smartsheet_stats(sandbox)["routes"]["GET /sheets/{id}"] - pages_before == pages
    assert len(result.added) == tracker.row_count and not result.changed and not result.deleted
    mirrored = {
        pk: (n, cells) for pk, n, cells in Row.objects.values_list("pk", "row_number", "cells")
    }
    assert mirrored == expected

    again = sync.sheet_sync(sheet_id=tracker.pk, full=True)
    assert (again.added, again.changed, again.deleted) == ([], [], [])


def test_only_a_cells_value_display_and_formula_are_mirrored():
    fields = store.row_fields(
        {
            "id": 1,
            "rowNumber": 3,
            "parentId": 9,
            "modifiedAt": "2026-11-20T10:00:00Z",
            "cells": [
                {"columnId": 11, "value": "a", "displayValue": "a"},
                {"columnId": 12},
                {"columnId": 13, "value": "Docs", "hyperlink": {"url": "https://x.test"}},
                {"columnId": 14, "format": ",,1"},
                {"columnId": 15, "value": 2, "formula": "=1+1"},
            ],
        }
    )
    assert fields["row_number"] == 3 and fields["parent_id"] == 9
    assert fields["modified_at"].isoformat() == "2026-11-20T10:00:00+00:00"
    assert fields["cells"] == {
        "11": {"value": "a", "displayValue": "a"},
        "13": {"value": "Docs"},
        "15": {"value": 2, "formula": "=1+1"},
    }
