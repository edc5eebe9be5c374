"""A mirror that cannot go quietly stale: restored sheets, lost tasks, gone sheets, safety polls."""

from __future__ import annotations

from datetime import timedelta

import pytest
import smartsheet
from django.core.management import CommandError, call_command
from django.utils import timezone

from sheets import poll, sync, tasks
from sheets.locks import sheet_sync_lock
from sheets.models import Column, Row, Sheet, SheetGrant
from sheets.selectors import sheets_visible_to
from tests.conftest import wait_until
from tests.sheets.conftest import other_user_client, run_sent_syncs, sheet_id_named


def _rename_first_row(sandbox, sheet: Sheet, value: str) -> Row:
    primary = Column.objects.get(sheet=sheet, primary=True)
    row = Row.objects.filter(sheet=sheet).order_by("row_number").first()
    other_user_client(sandbox).Sheets.update_rows(
        sheet.pk,
        [
            smartsheet.models.Row(
                {"id": row.pk, "cells": [{"columnId": primary.pk, "value": value}]}
            )
        ],
    )
    return row


def _owner(sandbox) -> smartsheet.Smartsheet:
    return other_user_client(sandbox, token="sandbox-token")


def test_a_sheet_set_back_to_an_older_version_is_synced_in_full(sandbox, tracker):
    primary = Column.objects.get(sheet=tracker, primary=True)
    row = _rename_first_row(sandbox, tracker, "Edited before the reset")
    seed_value = Row.objects.get(pk=row.pk).value(primary.pk)
    assert sync.sheet_sync(sheet_id=tracker.pk).kind == "incremental"
    assert Row.objects.get(pk=row.pk).value(primary.pk) == "Edited before the reset"

    sandbox.reset()  # Smartsheet's copy goes back to the seed: a lower version than mirrored
    remote_version = _owner(sandbox).Sheets.get_sheet_version(tracker.pk).version
    assert remote_version < Sheet.objects.get(pk=tracker.pk).version

    result = sync.sheet_sync(sheet_id=tracker.pk)
    assert result.kind == "full"
    assert Row.objects.get(pk=row.pk).value(primary.pk) == seed_value
    assert Sheet.objects.get(pk=tracker.pk).version == remote_version
    assert sync.sheet_sync(sheet_id=tracker.pk).kind == "unchanged"


def test_sync_sheets_refuses_an_id_smartsheet_does_not_know_and_stores_nothing(sandbox, db):
    with pytest.raises(CommandError) as raised:
        call_command("sync_sheets", "4242424242")
    assert "4242424242" in str(raised.value)
    assert "errorCode" not in str(raised.value)
    assert not Sheet.objects.exists()


def test_a_sheet_deleted_in_smartsheet_is_marked_gone_and_can_be_pruned(
    sandbox, tracker, alice, staff, client, sent_syncs, capsys
):
    SheetGrant.objects.create(sheet=tracker, user=alice, role=SheetGrant.Role.VIEW)
    _owner(sandbox).Sheets.delete_sheet(tracker.pk)

    result = sync.sheet_sync(sheet_id=tracker.pk)
    assert result.kind == "gone"
    gone = Sheet.objects.get(pk=tracker.pk)
    assert gone.sync_state == Sheet.SyncState.GONE
    assert "no longer has this sheet" in gone.sync_outcome
    assert "{" not in gone.sync_outcome

    with pytest.raises(CommandError) as raised:
        call_command("sync_sheets", str(tracker.pk))
    assert "no longer has this sheet" in str(raised.value)

    poll.sheets_poll()
    assert sent_syncs == []  # no longer polled
    assert tracker.pk not in sheets_visible_to(alice).values_list("pk", flat=True)
    client.force_login(staff)
    page = client.get("/sheets/").content.decode()
    assert "no longer has this sheet" in page
    assert "errorCode" not in page

    call_command("sync_sheets", "--prune")
    assert f"Removed sheet {tracker.pk}" in capsys.readouterr().out
    assert not Sheet.objects.filter(pk=tracker.pk).exists()
    assert not Row.objects.filter(sheet_id=tracker.pk).exists()


def test_a_failed_sync_shows_a_sentence_and_logs_the_detail(
    sandbox, tracker, staff, client, caplog
):
    _rename_first_row(sandbox, tracker, "Never arrives")
    sandbox.configure(smartsheet={"fail_rate": 1.0, "fail_codes": [4004]})
    with pytest.raises(sync.client.SmartsheetUnavailable):
        sync.sheet_sync(sheet_id=tracker.pk)
    failed = Sheet.objects.get(pk=tracker.pk)
    assert failed.sync_state == Sheet.SyncState.FAILED
    assert failed.sync_outcome == "Smartsheet could not be reached; the sync will be tried again."
    assert "4004" in caplog.text  # the detail is in the log
    client.force_login(staff)
    page = client.get("/sheets/").content.decode()
    assert failed.sync_outcome in page
    assert "4004" not in page


def test_sheets_with_a_live_webhook_still_get_a_safety_poll(sandbox, tracker, sent_syncs, settings):
    settings.SHEETS_SAFETY_POLL_INTERVAL = 300
    Sheet.objects.filter(pk=tracker.pk).update(webhook_status="ENABLED")
    poll.sheets_poll()
    assert sent_syncs == []  # synced moments ago

    row = _rename_first_row(sandbox, tracker, "Missed by the webhook")
    Sheet.objects.filter(pk=tracker.pk).update(synced_at=timezone.now() - timedelta(seconds=301))
    poll.sheets_poll()
    assert [s["sheet_id"] for s in sent_syncs] == [tracker.pk]
    run_sent_syncs(sent_syncs)
    primary = Column.objects.get(sheet=tracker, primary=True)
    assert Row.objects.get(pk=row.pk).value(primary.pk) == "Missed by the webhook"


def test_a_sync_a_callback_asked_for_while_redis_was_down_is_polled_at_once(
    sandbox, tracker, sent_syncs, settings
):
    settings.SHEETS_SAFETY_POLL_INTERVAL = 300
    Sheet.objects.filter(pk=tracker.pk).update(webhook_status="ENABLED")
    row = _rename_first_row(sandbox, tracker, "Heard while Redis was down")
    # What the receiver records when it cannot queue the sync (tests/sheets/test_webhook_outages).
    Sheet.objects.filter(pk=tracker.pk).update(sync_requested_at=timezone.now())

    poll.sheets_poll()
    assert [s["sheet_id"] for s in sent_syncs] == [tracker.pk]  # not waiting for the safety poll
    run_sent_syncs(sent_syncs)
    primary = Column.objects.get(sheet=tracker, primary=True)
    assert Row.objects.get(pk=row.pk).value(primary.pk) == "Heard while Redis was down"
    poll.sheets_poll()
    assert sent_syncs == []  # the request is answered


def test_a_lost_scheduled_sync_does_not_block_later_requests(tracker, sent_syncs, settings):
    settings.SHEETS_SYNC_DEBOUNCE = 0.2
    settings.SHEETS_SYNC_PENDING_GRACE = 1
    assert sync.sheet_sync_request(sheet_id=tracker.pk)
    assert not sync.sheet_sync_request(sheet_id=tracker.pk)  # a burst becomes one sync
    sent_syncs.clear()  # that task is lost (its worker died before running it)

    wait_until(
        lambda: sync.sheet_sync_request(sheet_id=tracker.pk),
        timeout=10,
        interval=0.2,
        what="a new request to schedule a sync again",
    )
    assert len(sent_syncs) == 1


def test_the_poller_sends_one_task_per_sheet_and_syncs_nothing_itself(sandbox, tracker, sent_syncs):
    feedback_id = sync.sheets_discover(sheet_ids=[sheet_id_named(sandbox, "Customer Feedback")])[
        0
    ].pk
    row = _rename_first_row(sandbox, tracker, "Polled later")
    calls_before = sync.client.api_calls_made()
    done = poll.sheets_poll()
    assert sync.client.api_calls_made() == calls_before
    assert sorted(done.requested) == sorted([tracker.pk, feedback_id])
    assert sorted(s["sheet_id"] for s in sent_syncs) == sorted([tracker.pk, feedback_id])
    primary = Column.objects.get(sheet=tracker, primary=True)
    assert Row.objects.get(pk=row.pk).value(primary.pk) != "Polled later"


def test_a_sheet_left_mid_sync_is_synced_in_full_by_the_next_poll(tracker, sent_syncs):
    Sheet.objects.filter(pk=tracker.pk).update(sync_state=Sheet.SyncState.SYNCING)
    with sheet_sync_lock(sheet_id=tracker.pk):  # its sync is still running: leave it be
        assert poll.sheets_poll().resumed == []
    assert sent_syncs == []

    done = poll.sheets_poll()  # no lock: its worker died
    assert done.resumed == [tracker.pk]
    assert sent_syncs == [{"sheet_id": tracker.pk, "full": True, "countdown": 0}]
    assert run_sent_syncs(sent_syncs) == ["full: 0 added, 0 updated, 0 deleted"]
    assert Sheet.objects.get(pk=tracker.pk).sync_state == Sheet.SyncState.OK


def test_sheet_tasks_go_to_the_bulk_queue():
    from config.celery import app

    for name in ("sheets.tasks.sheet_sync_task", "sheets.tasks.sheets_poll"):
        assert app.amqp.router.route({}, name)["queue"].name == "bulk"
    # Routed by settings, not by the decorators' deprecated queue=.
    assert getattr(tasks.sheet_sync_task, "queue", None) is None
    assert getattr(tasks.sheets_poll, "queue", None) is None
