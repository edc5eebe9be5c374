"""The webhook receiver: challenges, signed callbacks, replays, malformed input, refusals."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import smartsheet
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.ratelimit import redis_client
from sheets import sync
from sheets.events import sheet_group
from sheets.models import Column, Row, Sheet, WebhookNonce, WebhookRejection
from tests.conftest import run_in_thread, wait_until
from tests.sheets.conftest import (
    WEBHOOK_URL,
    callback_body,
    other_user_client,
    post_callback,
    sign,
)


def _challenge(client, value: str = "abc-123", webhook_id: int = 555, body: dict | None = None):
    body = {"challenge": value, "webhookId": webhook_id} if body is None else body
    return post_callback(client, json.dumps(body).encode(), **{"Smartsheet-Hook-Challenge": value})


def _forget_sample_periods() -> None:
    """As if WEBHOOK_REJECTION_SAMPLE_SECONDS had passed: the next refusal of a kind is stored."""
    redis = redis_client()
    pattern = f"{django_settings.REDIS_PREFIX}:sheets:webhook-refused:gate:*"
    gates = list(redis.scan_iter(match=pattern))
    if gates:
        redis.delete(*gates)


# --- Challenges -------------------------------------------------------------------------------


def test_it_answers_the_challenge_in_header_and_body(client, hooked, enqueued):
    response = _challenge(client, "abc-123")
    assert response.status_code == 200
    assert response["Smartsheet-Hook-Response"] == "abc-123"
    assert response.json() == {"smartsheetHookResponse": "abc-123"}
    assert enqueued == []


@pytest.mark.parametrize(
    "status", ["NEW_NOT_VERIFIED", "DISABLED_CALLBACK_FAILED", "DISABLED_VERIFICATION_FAILED"]
)
def test_it_answers_the_challenge_of_a_webhook_its_owner_is_enabling(client, hooked, status):
    Sheet.objects.filter(pk=1001).update(webhook_status=status)
    assert _challenge(client)["Smartsheet-Hook-Response"] == "abc-123"


@pytest.mark.parametrize("status", ["DISABLED_APP_REVOKED", "DISABLED_ADMINISTRATIVE"])
def test_it_does_not_answer_a_challenge_for_a_webhook_that_cannot_be_enabled(
    client, hooked, status
):
    Sheet.objects.filter(pk=1001).update(webhook_status=status)
    response = _challenge(client)
    assert response.status_code == 403
    assert "Smartsheet-Hook-Response" not in response
    assert "smartsheetHookResponse" not in response.json()
    assert WebhookRejection.objects.get().reason == "challenge_refused"


def test_it_does_not_answer_a_challenge_for_a_webhook_whose_secret_it_lost(client, hooked):
    Sheet.objects.filter(pk=1001).update(webhook_shared_secret="")
    response = _challenge(client)
    assert response.status_code == 403
    assert "Smartsheet-Hook-Response" not in response


def test_a_challenge_inside_an_event_callback_is_not_echoed(client, hooked, enqueued):
    body = callback_body(challenge="echo-me")
    response = post_callback(client, body, sign(body))
    assert response.status_code == 200
    assert "Smartsheet-Hook-Response" not in response
    assert "echo-me" not in response.content.decode()
    assert enqueued == [(1001,)]  # an ordinary callback: a sync, nothing echoed


def test_a_challenge_without_the_challenge_header_is_not_answered(client, hooked, enqueued):
    body = json.dumps({"challenge": "abc-123", "webhookId": 555}).encode()
    response = post_callback(client, body)
    assert response.status_code == 400
    assert "abc-123" not in response.content.decode()
    assert "Smartsheet-Hook-Response" not in response


@pytest.mark.parametrize(
    "body",
    [
        {"challenge": "abc-123", "webhookId": 555, "nonce": "n", "events": []},
        {"challenge": "something-else", "webhookId": 555},
        {"webhookId": 555},
    ],
    ids=["event-fields-too", "body-differs-from-header", "no-challenge-in-body"],
)
def test_a_challenge_header_on_anything_but_a_verification_request_is_refused(client, hooked, body):
    response = _challenge(client, "abc-123", body=body)
    assert response.status_code == 400
    assert "Smartsheet-Hook-Response" not in response
    assert "error" in response.json()


def test_a_challenge_that_cannot_be_a_header_value_is_refused(client, hooked):
    response = _challenge(client, "two words")
    assert response.status_code == 400
    assert "Smartsheet-Hook-Response" not in response


# --- Signed callbacks -------------------------------------------------------------------------


def test_a_signed_burst_of_events_schedules_one_sync(client, hooked, enqueued):
    for nonce in ("n-1", "n-2", "n-3"):
        body = callback_body(nonce)
        assert post_callback(client, body, sign(body)).status_code == 200
    assert enqueued == [(1001,)]
    assert Sheet.objects.get(pk=1001).sync_requested_at is None  # the queue took it


def test_the_signature_is_compared_case_insensitively(client, hooked, enqueued):
    body = callback_body()
    assert post_callback(client, body, sign(body).upper()).status_code == 200
    assert enqueued == [(1001,)]


def test_it_ignores_a_replayed_callback(client, hooked, enqueued):
    body = callback_body("same-nonce")
    assert post_callback(client, body, sign(body)).status_code == 200
    sync.sheet_sync_pending_clear(sheet_id=1001)  # the first sync has started
    response = post_callback(client, body, sign(body))
    assert response.status_code == 200
    assert response.json() == {"status": "replay ignored"}
    assert enqueued == [(1001,)]


def test_a_callback_without_a_nonce_is_refused(client, hooked, enqueued):
    body = callback_body(nonce=None)
    response = post_callback(client, body, sign(body))
    assert response.status_code == 400
    assert "nonce" in response.json()["error"]
    assert enqueued == []


def test_nonces_are_forgotten_after_their_time(client, hooked, enqueued, settings):
    old = WebhookNonce.objects.create(webhook_id=555, nonce="old")
    WebhookNonce.objects.filter(pk=old.pk).update(received_at=old.received_at - timedelta(days=8))
    settings.WEBHOOK_NONCE_TTL = 7 * 24 * 3600
    body = callback_body("new")
    assert post_callback(client, body, sign(body)).status_code == 200
    assert list(WebhookNonce.objects.values_list("nonce", flat=True)) == ["new"]


def test_a_status_callback_records_the_new_status(client, hooked, enqueued):
    body = json.dumps(
        {"nonce": "s-1", "webhookId": 555, "newWebhookStatus": "DISABLED_SCOPE_INACCESSIBLE"}
    ).encode()
    assert post_callback(client, body, sign(body)).status_code == 200
    assert Sheet.objects.get(pk=1001).webhook_status == "DISABLED_SCOPE_INACCESSIBLE"
    assert enqueued == []


def test_a_status_callback_that_also_carries_events_is_noted_and_synced(client, hooked, enqueued):
    body = callback_body(newWebhookStatus="ENABLED")
    Sheet.objects.filter(pk=1001).update(webhook_status="DISABLED_SCOPE_INACCESSIBLE")
    assert post_callback(client, body, sign(body)).json() == {"status": "sync scheduled"}
    assert Sheet.objects.get(pk=1001).webhook_status == "ENABLED"
    assert enqueued == [(1001,)]


# --- Refusals ---------------------------------------------------------------------------------


def test_it_refuses_a_forged_signature_and_records_a_sample(client, hooked, enqueued):
    body = callback_body()
    assert post_callback(client, body, sign(body, secret="a-guess")).status_code == 403
    assert post_callback(client, body).status_code == 403  # unsigned
    assert enqueued == []
    record = WebhookRejection.objects.get()  # one per kind and sample period
    assert (record.reason, record.webhook_id, record.count) == ("bad_signature", 555, 1)
    _forget_sample_periods()
    assert post_callback(client, body).status_code == 403
    latest = WebhookRejection.objects.order_by("-pk").first()
    assert latest.count == 2  # the unsigned one above, not stored, and this one


def test_it_refuses_an_unknown_webhook_and_records_it(client, hooked, enqueued):
    body = callback_body(webhook_id=999)
    assert post_callback(client, body, sign(body)).status_code == 403
    response = _challenge(client, webhook_id=999)
    assert response.status_code == 403
    assert "Smartsheet-Hook-Response" not in response
    assert enqueued == []
    assert list(WebhookRejection.objects.values_list("reason", "webhook_id")) == [
        ("unknown_webhook", 999)
    ]


def test_a_flood_of_forged_callbacks_costs_no_database_writes_and_hides_no_genuine_refusal(
    client, hooked, enqueued
):
    with CaptureQueriesContext(connection) as queries:
        for n in range(200):
            body = callback_body(nonce=f"forged-{n}", webhook_id=10_000 + n)
            assert post_callback(client, body, sign(body, secret="a-guess")).status_code == 403
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(writes) <= 2  # the one sample stored (and the prune of old ones)

    # Our own webhook's callback signed with a secret we no longer have (it was reset):
    genuine = callback_body(nonce="after-reset")
    assert post_callback(client, genuine, sign(genuine, secret="the-new-secret")).status_code == 403
    assert WebhookRejection.objects.filter(reason="bad_signature", webhook_id=555).exists()

    _forget_sample_periods()
    body = callback_body(nonce="forged-last", webhook_id=99_999)
    post_callback(client, body, sign(body, secret="a-guess"))
    assert WebhookRejection.objects.filter(reason="unknown_webhook").count() == 2
    assert WebhookRejection.objects.filter(webhook_id=99_999).get().count == 200


def test_the_admin_shows_how_many_callbacks_ended_each_way(client, hooked, enqueued, staff):
    for n in range(3):
        body = callback_body(nonce=f"forged-{n}")
        post_callback(client, body, sign(body, secret="a-guess"))
    body = callback_body(nonce="fine")
    post_callback(client, body, sign(body))
    client.force_login(staff)
    page = client.get("/admin/sheets/webhookrejection/").content.decode()
    counts = page[page.index('id="webhook-callback-counts"') :]
    assert '<th scope="row">bad_signature</th><td>3</td>' in counts
    assert '<th scope="row">accepted</th><td>1</td>' in counts
    assert "fine" in client.get("/admin/sheets/webhooknonce/").content.decode()


def test_old_refusal_records_are_dropped(client, hooked, settings):
    settings.WEBHOOK_REJECTION_DAYS = 30
    old = WebhookRejection.objects.create(reason="bad_signature", webhook_id=555)
    WebhookRejection.objects.filter(pk=old.pk).update(
        received_at=old.received_at - timedelta(days=31)
    )
    body = callback_body(webhook_id=999)
    post_callback(client, body, sign(body))
    assert list(WebhookRejection.objects.values_list("webhook_id", flat=True)) == [999]


# --- Malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"nonce": "x"}',
        b'{"webhookId": "555"}',
        callback_body(events="all"),
        callback_body(events=[1, 2]),
        json.dumps({"nonce": "x", "webhookId": 555}).encode(),
        callback_body(webhook_id=2**63),  # past PostgreSQL's bigint
        callback_body(webhook_id=2**64),
        callback_body(webhook_id=10**30),
        callback_body(webhook_id=0),
        callback_body(webhook_id=-5),
        callback_body(nonce="x" * 101),
        callback_body(nonce="nul\u0000byte"),
        callback_body(nonce=""),
        callback_body(nonce=17),
        b'{"webhookId": 555, "nonce": "n", "events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"webhookId": 555, "nonce": "n", "events": [], "x": NaN}',
        b'{"webhookId": 555, "nonce": "\xff", "events": []}',
        b'{"webhookId": 555, "nonce": "\\ud800", "events": []}',
        json.dumps({"nonce": "s", "webhookId": 555, "newWebhookStatus": "bad\nstatus"}).encode(),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-webhook-id",
        "string-webhook-id",
        "events-not-a-list",
        "events-not-objects",
        "neither-events-nor-status",
        "webhook-id-past-bigint",
        "webhook-id-past-64-bits",
        "webhook-id-a-float",
        "webhook-id-zero",
        "webhook-id-negative",
        "nonce-too-long",
        "nonce-with-nul",
        "nonce-empty",
        "nonce-a-number",
        "nested-100000-deep",
        "nan",
        "invalid-utf-8",
        "lone-surrogate",
        "status-with-newline",
    ],
)
def test_malformed_bodies_get_400_and_change_nothing(client, hooked, enqueued, body):
    response = post_callback(client, body, sign(body))
    assert response.status_code == 400
    assert 0 < len(response.json()["error"]) < 200
    assert enqueued == []
    assert not WebhookRejection.objects.exists()
    assert not WebhookNonce.objects.exists()
    assert Sheet.objects.get(pk=1001).webhook_status == "ENABLED"


def test_oversized_bodies_get_413_and_change_nothing(client, hooked, enqueued, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 2000
    body = callback_body(padding="x" * 3000)
    assert post_callback(client, body, sign(body)).status_code == 413
    assert enqueued == []
    assert not WebhookRejection.objects.exists()
    assert Sheet.objects.get(pk=1001).webhook_status == "ENABLED"


def test_it_only_accepts_post(client, hooked):
    assert client.get(WEBHOOK_URL).status_code == 405


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
        timeout=60,
        what="the webhook-triggered sync to update the mirror",
    )
    message = inbox.get(timeout=30)
    assert (message["sheet_id"], message["changed"], message["added"]) == (sheet_id, [row.pk], [])
    assert not WebhookRejection.objects.exists()


def _events_by(*agents: str | None) -> list[dict]:
    events = []
    for agent in agents:
        event = {"objectType": "cell", "eventType": "updated", "rowId": 1, "columnId": 2}
        if agent:
            event["changeAgent"] = agent
        events.append(event)
    return events


@pytest.mark.django_db
def test_a_callback_whose_events_all_carry_our_change_agent_schedules_no_sync(
    client, hooked, enqueued, settings
):
    # Our own writes (grid, jobs, chat): the mirror took them when they were made.
    ours = settings.SMARTSHEET_CHANGE_AGENT
    body = callback_body(nonce="ours", events=_events_by(ours, ours))
    answer = post_callback(client, body, sign(body))
    assert answer.status_code == 200
    assert answer.json() == {"status": "own change"}
    assert enqueued == []


@pytest.mark.django_db
def test_a_callback_with_anyone_elses_event_still_schedules_a_sync(
    client, hooked, enqueued, settings
):
    ours = settings.SMARTSHEET_CHANGE_AGENT
    for nonce, agents in (("a", (ours, None)), ("b", (ours, "someone-elses-integration"))):
        body = callback_body(nonce=nonce, events=_events_by(*agents))
        assert post_callback(client, body, sign(body)).status_code == 200
    assert len(enqueued) == 1  # the second callback joins the sync the first scheduled
