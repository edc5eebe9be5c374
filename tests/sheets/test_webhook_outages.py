"""The webhook receiver while Redis is down or has restarted empty (a private redis-server)."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone
from kombu.exceptions import OperationalError

from sheets.models import Sheet, WebhookRejection
from sheets.selectors import sheets_needing_sync
from tests.sheets.conftest import callback_body, post_callback, sign


def test_a_genuine_callback_is_acknowledged_and_the_sheet_left_for_the_poller_while_redis_is_down(
    client, hooked, enqueued, private_redis
):
    private_redis.stop()
    body = callback_body("during-the-outage")
    response = post_callback(client, body, sign(body))
    assert response.status_code == 200  # a 500 is retried, and 14 of them disable the webhook
    assert enqueued == []
    sheet = Sheet.objects.get(pk=1001)
    assert sheet.sync_requested_at is not None
    assert list(sheets_needing_sync()) == [sheet]


def test_every_kind_of_request_is_answered_without_a_500_while_redis_is_down(
    client, hooked, enqueued, private_redis
):
    private_redis.stop()
    challenge = json.dumps({"challenge": "abc", "webhookId": 555}).encode()
    assert (
        post_callback(client, challenge, **{"Smartsheet-Hook-Challenge": "abc"}).status_code == 200
    )
    status = json.dumps({"nonce": "s", "webhookId": 555, "newWebhookStatus": "ENABLED"}).encode()
    assert post_callback(client, status, sign(status)).status_code == 200
    forged = callback_body("forged")
    assert post_callback(client, forged, sign(forged, secret="a-guess")).status_code == 403
    assert post_callback(client, b"{not json").status_code == 400
    # Without Redis to count and sample them, refusals are not stored: still no write per call.
    assert not WebhookRejection.objects.exists()


def test_a_replay_is_still_ignored_after_redis_restarts_empty(
    client, hooked, enqueued, private_redis
):
    body = callback_body("only-once")
    assert post_callback(client, body, sign(body)).json() == {"status": "sync scheduled"}
    private_redis.stop()
    private_redis.start()  # it keeps nothing on disk: every key is gone
    response = post_callback(client, body, sign(body))
    assert response.json() == {"status": "replay ignored"}
    assert enqueued == [(1001,)]


def test_a_sheet_stops_needing_a_sync_once_a_sync_started_after_the_request_succeeds(hooked):
    requested = timezone.now()
    Sheet.objects.filter(pk=1001).update(
        sync_requested_at=requested, sync_started_at=requested - timedelta(minutes=5)
    )
    assert list(sheets_needing_sync().values_list("pk", flat=True)) == [1001]
    Sheet.objects.filter(pk=1001).update(sync_started_at=requested + timedelta(seconds=1))
    assert not sheets_needing_sync().exists()


def test_a_queued_sync_leaves_no_request_for_the_poller(client, hooked, enqueued, private_redis):
    body = callback_body("queued")
    assert post_callback(client, body, sign(body)).json() == {"status": "sync scheduled"}
    assert not sheets_needing_sync().exists()


def test_when_only_the_broker_fails_the_next_callback_tries_to_queue_again(
    client, hooked, monkeypatch
):
    from sheets.tasks import sheet_sync_task

    sent: list = []

    def broker_down_once(args, **kwargs):
        if not sent:
            sent.append("refused")
            raise OperationalError("Error 111 connecting to the broker. Connection refused.")
        sent.append(args)

    monkeypatch.setattr(sheet_sync_task, "apply_async", broker_down_once)
    first = callback_body("first")
    assert post_callback(client, first, sign(first)).json() == {"status": "sync requested"}
    assert Sheet.objects.get(pk=1001).sync_requested_at is not None
    second = callback_body("second")
    assert post_callback(client, second, sign(second)).json() == {"status": "sync scheduled"}
    assert sent == ["refused", (1001,)]


def test_the_admin_says_the_counts_are_unknown_while_redis_is_down(client, staff, private_redis):
    private_redis.stop()
    client.force_login(staff)
    response = client.get("/admin/sheets/webhookrejection/")
    assert response.status_code == 200
    assert "Redis does not answer, so the counts are unknown." in response.content.decode()
