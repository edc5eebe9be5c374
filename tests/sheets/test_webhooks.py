from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import smartsheet
from django.core.management import call_command

from sheets import sync
from sheets.events import sheet_group
from sheets.models import Column, Row, Sheet, WebhookRejection
from tests.conftest import run_in_thread, wait_until
from tests.sheets.conftest import other_user_client

URL = "/webhooks/smartsheet/"
SECRET = "the-shared-secret"


@pytest.fixture
def hooked(db) -> Sheet:
    return Sheet.objects.create(
        id=1001,
        name="Hooked",
        webhook_id=555,
        webhook_status="ENABLED",
        webhook_shared_secret=SECRET,
    )


@pytest.fixture
def enqueued(monkeypatch) -> list:
    """Sync tasks the receiver scheduled (recorded instead of sent to the broker)."""
    from sheets.tasks import sheet_sync_task

    calls: list = []
    monkeypatch.setattr(sheet_sync_task, "apply_async", lambda args, **kw: calls.append(args))
    return calls


def _event(nonce: str = "n-1", webhook_id: int = 555, **extra) -> bytes:
    payload = {
        "nonce": nonce,
        "timestamp": "2025-01-01T00:00:00.000+00:00",
        "webhookId": webhook_id,
        "scope": "sheet",
        "scopeObjectId": 1001,
        "events": [{"objectType": "cell", "eventType": "updated", "rowId": 1, "columnId": 2}],
        **extra,
    }
    return json.dumps(payload).encode()


def _sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(client, body: bytes, signature: str | None = None, **headers):
    if signature:
        headers["Smartsheet-Hmac-SHA256"] = signature
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def test_it_answers_the_challenge_in_header_and_body(client, hooked, enqueued):
    body = json.dumps({"challenge": "abc-123", "webhookId": 555}).encode()
    response = _post(client, body, **{"Smartsheet-Hook-Challenge": "abc-123"})
    assert response.status_code == 200
    assert response["Smartsheet-Hook-Response"] == "abc-123"
    assert response.json() == {"smartsheetHookResponse": "abc-123"}
    assert enqueued == []


def test_a_signed_burst_of_events_schedules_one_sync(client, hooked, enqueued):
    for nonce in ("n-1", "n-2", "n-3"):
        body = _event(nonce)
        assert _post(client, body, _sign(body)).status_code == 200
    assert enqueued == [(1001,)]


def test_the_signature_is_compared_case_insensitively(client, hooked, enqueued):
    body = _event()
    assert _post(client, body, _sign(body).upper()).status_code == 200
    assert enqueued == [(1001,)]


def test_it_refuses_a_forged_signature_and_records_it(client, hooked, enqueued):
    body = _event()
    response = _post(client, body, _sign(body, secret="a-guess"))
    assert response.status_code == 403
    assert _post(client, body).status_code == 403  # unsigned
    assert enqueued == []
    assert list(WebhookRejection.objects.values_list("reason", "webhook_id")) == [
        ("bad_signature", 555),
        ("bad_signature", 555),
    ]


def test_it_refuses_an_unknown_webhook_and_records_it(client, hooked, enqueued):
    body = _event(webhook_id=999)
    assert _post(client, body, _sign(body)).status_code == 403
    challenge = json.dumps({"challenge": "x", "webhookId": 999}).encode()
    assert _post(client, challenge).status_code == 403
    assert enqueued == []
    assert WebhookRejection.objects.filter(reason="unknown_webhook", webhook_id=999).count() == 2


def test_a_flood_of_forged_callbacks_keeps_only_the_newest_records(
    client, hooked, enqueued, settings
):
    settings.WEBHOOK_REJECTIONS_KEPT = 3
    for n in range(7):
        body = _event(nonce=f"forged-{n}")
        assert _post(client, body, _sign(body, secret="a-guess")).status_code == 403
    kept = [
        json.loads(e)["nonce"]
        for e in WebhookRejection.objects.values_list("body_excerpt", flat=True).order_by("pk")
    ]
    assert kept == ["forged-4", "forged-5", "forged-6"]


def test_it_ignores_a_replayed_callback(client, hooked, enqueued):
    body = _event("same-nonce")
    assert _post(client, body, _sign(body)).status_code == 200
    sync.sheet_sync_pending_clear(sheet_id=1001)  # the first sync has started
    response = _post(client, body, _sign(body))
    assert response.status_code == 200
    assert response.json() == {"status": "replay ignored"}
    assert enqueued == [(1001,)]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"nonce": "x"}', b'{"webhookId": "555"}', _event(events="all")],
    ids=["not-json", "not-an-object", "no-webhook-id", "string-webhook-id", "events-not-a-list"],
)
def test_malformed_bodies_get_400_and_change_nothing(client, hooked, enqueued, body):
    response = _post(client, body, _sign(body))
    assert response.status_code == 400
    assert "error" in response.json()
    assert enqueued == []
    assert not WebhookRejection.objects.exists()


def test_oversized_bodies_get_413_and_change_nothing(client, hooked, enqueued, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 2000
    body = _event(padding="x" * 3000)
    assert _post(client, body, _sign(body)).status_code == 413
    assert enqueued == []
    assert not WebhookRejection.objects.exists()
    assert Sheet.objects.get(pk=1001).webhook_status == "ENABLED"


def test_a_status_callback_records_the_new_status(client, hooked, enqueued):
    body = json.dumps(
        {"nonce": "s-1", "webhookId": 555, "newWebhookStatus": "DISABLED_SCOPE_INACCESSIBLE"}
    ).encode()
    assert _post(client, body, _sign(body)).status_code == 200
    assert Sheet.objects.get(pk=1001).webhook_status == "DISABLED_SCOPE_INACCESSIBLE"
    assert enqueued == []


def test_it_only_accepts_post(client, hooked):
    assert client.get(URL).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_change_in_smartsheet_reaches_the_mirror_and_open_grids_through_the_webhook(
    sandbox, live_server_url, celery_worker, group_inbox, capsys
):
    from tests.sheets.conftest import sheet_id_named

    sheet_id = sheet_id_named(sandbox, "Project Tracker")
    sync.sheets_discover(sheet_ids=[sheet_id])
    # Its announcement uses async_to_sync, which a browser test's event loop in this thread forbids.
    run_in_thread(sync.sheet_sync, sheet_id=sheet_id)
    call_command("register_webhooks", callback_url=f"{live_server_url}/webhooks/smartsheet/")
    assert Sheet.objects.get(pk=sheet_id).webhook_status == "ENABLED"
    assert "created" in capsys.readouterr().out
    call_command("register_webhooks", callback_url=f"{live_server_url}/webhooks/smartsheet/")
    assert "(ok)" in capsys.readouterr().out  # a second run changes nothing

    primary = Column.objects.get(sheet_id=sheet_id, primary=True)
    row = Row.objects.filter(sheet_id=sheet_id).order_by("row_number").first()
    inbox = group_inbox(sheet_group(sheet_id))
    other_user_client(sandbox).Sheets.update_rows(
        sheet_id,
        [
            smartsheet.models.Row(
                {"id": row.pk, "cells": [{"columnId": primary.pk, "value": "From Pat"}]}
            )
        ],
    )

    wait_until(
        lambda: Row.objects.get(pk=row.pk).value(primary.pk) == "From Pat",
        timeout=20,
        what="the webhook-triggered sync to update the mirror",
    )
    message = inbox.get(timeout=5)
    assert (message["sheet_id"], message["changed"], message["added"]) == (sheet_id, [row.pk], [])
    assert not WebhookRejection.objects.exists()
