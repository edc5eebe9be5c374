"""Webhooks Smartsheet gave up on are noticed and repaired; registering handles sheets one by one.

These run the real receiver (daphne) so that Smartsheet's challenges and callbacks reach it.
"""

from __future__ import annotations

import pytest
import smartsheet
from django.core.management import CommandError, call_command

from sheets import poll, sync
from sheets.models import Column, Row, Sheet
from tests.conftest import run_in_thread
from tests.sheets.conftest import other_user_client, run_sent_syncs, sheet_id_named

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hooked(sandbox, live_server_url, settings) -> Sheet:
    """Project Tracker, mirrored, with an ENABLED webhook calling the live receiver."""
    settings.WEBHOOK_CALLBACK_URL = f"{live_server_url}/webhooks/smartsheet/"
    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    sync.sheets_discover(sheet_ids=[sheet_id])
    run_in_thread(sync.sheet_sync, sheet_id=sheet_id)  # see run_sent_syncs
    call_command("register_webhooks")
    sheet = Sheet.objects.get(pk=sheet_id)
    assert sheet.webhook_status == "ENABLED"
    return sheet


def _edit_first_row(sandbox, sheet: Sheet, value: str) -> tuple[Row, Column]:
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
    return row, primary


def test_a_webhook_smartsheet_disabled_is_noticed_re_enabled_and_its_sheet_resynced(
    sandbox, hooked, sent_syncs
):
    sandbox.configure(smartsheet={"webhook_retry_attempts": 2, "webhook_retry_base_ms": 10})
    secret = hooked.webhook_shared_secret
    # An outage on our side (Redis down, say): every callback is refused, the status-change
    # notice too, so the app still believes the webhook is ENABLED.
    Sheet.objects.filter(pk=hooked.pk).update(webhook_shared_secret="lost-in-the-outage")
    row, primary = _edit_first_row(sandbox, hooked, "Changed during the outage")
    sandbox.control("POST", "flush")
    remote = other_user_client(sandbox, token="sandbox-token").Webhooks.get_webhook(
        hooked.webhook_id
    )
    assert str(remote.status) == "DISABLED_CALLBACK_FAILED"
    assert Sheet.objects.get(pk=hooked.pk).webhook_status == "ENABLED"
    Sheet.objects.filter(pk=hooked.pk).update(webhook_shared_secret=secret)  # outage over

    done = poll.sheets_poll()
    assert done.webhooks_repaired == [hooked.pk]
    assert Sheet.objects.get(pk=hooked.pk).webhook_status == "ENABLED"
    remote = other_user_client(sandbox, token="sandbox-token").Webhooks.get_webhook(
        hooked.webhook_id
    )
    assert str(remote.status) == "ENABLED"
    assert [s["sheet_id"] for s in sent_syncs] == [hooked.pk]
    run_sent_syncs(sent_syncs)
    assert Row.objects.get(pk=row.pk).value(primary.pk) == "Changed during the outage"


def test_a_sheet_deleted_in_smartsheet_is_heard_of_through_its_webhook_and_marked_gone(
    sandbox, hooked, sent_syncs
):
    other_user_client(sandbox, token="sandbox-token").Sheets.delete_sheet(hooked.pk)
    sandbox.control("POST", "flush")
    # Smartsheet's status-change callback reached the receiver.
    assert Sheet.objects.get(pk=hooked.pk).webhook_status == "DISABLED_SCOPE_INACCESSIBLE"

    poll.sheets_poll()  # not repairable; the sheet is polled instead, and found gone
    assert run_sent_syncs(sent_syncs) == ["gone from Smartsheet"]
    assert Sheet.objects.get(pk=hooked.pk).sync_state == Sheet.SyncState.GONE


def test_register_webhooks_handles_each_sheet_on_its_own_and_names_the_failures(
    sandbox, live_server_url
):
    tracker_id = sheet_id_named(sandbox, "Project Tracker")
    sync.sheets_discover(sheet_ids=[tracker_id])
    # Mirrored once, deleted in Smartsheet since; sorted first, so it is tried first.
    Sheet.objects.create(id=4242, name="A sheet deleted since")

    with pytest.raises(CommandError) as raised:
        call_command("register_webhooks", callback_url=f"{live_server_url}/webhooks/smartsheet/")
    assert "4242" in str(raised.value)
    assert Sheet.objects.get(pk=tracker_id).webhook_status == "ENABLED"
    assert Sheet.objects.get(pk=4242).webhook_id is None
