"""The webhook lifecycle against a receiver in the test: challenge, signed callbacks, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.sandbox.smartsheet_support import client, column_ids, row, sheet_id

AUTH = {"Authorization": "Bearer sandbox-token"}


class Receiver:
    """Answers challenges and records callbacks; `status` makes callbacks fail on purpose."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[dict, bytes]] = []
        self.challenges = 0
        self.status = 200
        self.answer_challenges = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                challenge = self.headers.get("Smartsheet-Hook-Challenge")
                if challenge:
                    receiver.challenges += 1
                    self.send_response(200)
                    if receiver.answer_challenges:
                        self.send_header("Smartsheet-Hook-Response", challenge)
                    self.end_headers()
                    return
                receiver.callbacks.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()


def create(sandbox, sid: int, url: str) -> dict:
    body = {
        "name": "sync",
        "callbackUrl": url,
        "scope": "sheet",
        "scopeObjectId": sid,
        "events": ["*.*"],
        "version": 1,
    }
    response = httpx.post(f"{sandbox.smartsheet_base}/webhooks", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def enable(sandbox, webhook_id: int) -> dict:
    response = httpx.put(
        f"{sandbox.smartsheet_base}/webhooks/{webhook_id}", json={"enabled": True}, headers=AUTH
    )
    return response.json()["result"]


def test_it_verifies_then_delivers_signed_coalesced_callbacks(sandbox, receiver):
    ss = client(sandbox)
    ss.with_change_agent("workbench")
    sid = sheet_id(ss, "Project Tracker")
    cols = column_ids(ss, sid)
    webhook = create(sandbox, sid, receiver.url)
    assert (webhook["enabled"], webhook["status"]) == (False, "NEW_NOT_VERIFIED")
    assert webhook["sharedSecret"]
    enabled = enable(sandbox, webhook["id"])
    assert (enabled["enabled"], enabled["status"], receiver.challenges) == (True, "ENABLED", 1)

    target = ss.Sheets.get_sheet(sid, page_size=1).rows[0]
    ss.Sheets.update_rows(sid, [row({cols["Notes"]: "one"}, id=target.id)])
    ss.Sheets.add_rows(sid, [row({cols["Task"]: "two"})])
    sandbox.control("POST", "flush")

    assert len(receiver.callbacks) == 1  # two quick changes, one callback
    headers, body = receiver.callbacks[0]
    expected = hmac.new(webhook["sharedSecret"].encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["Smartsheet-Hmac-SHA256"], expected)
    payload = json.loads(body)
    assert payload["webhookId"] == webhook["id"] and payload["scopeObjectId"] == sid
    assert payload["scope"] == "sheet" and payload["nonce"] and payload["timestamp"]
    kinds = {(e["objectType"], e["eventType"]) for e in payload["events"]}
    assert {
        ("cell", "updated"),
        ("row", "updated"),
        ("row", "created"),
        ("sheet", "updated"),
    } <= kinds
    cell = next(e for e in payload["events"] if e["objectType"] == "cell")
    assert (cell["rowId"], cell["columnId"]) == (target.id, cols["Notes"])
    assert all(e["changeAgent"] == "workbench" for e in payload["events"])
    assert all(e["userId"] and e["timestamp"] for e in payload["events"])
    assert sandbox.stats()["services"]["smartsheet"]["counters"]["webhook_callbacks_sent"] == 1


def test_it_manages_webhooks_through_the_sdk(sandbox, receiver):
    ss = client(sandbox)
    webhook = create(sandbox, sheet_id(ss, "Customer Feedback"), receiver.url)
    listed = ss.Webhooks.list_webhooks()
    assert [w.id for w in listed.data] == [webhook["id"]]
    secret = ss.Webhooks.reset_shared_secret(webhook["id"]).result.shared_secret
    assert secret and secret != webhook["sharedSecret"]
    assert ss.Webhooks.get_webhook(webhook["id"]).shared_secret == secret
    ss.Webhooks.delete_webhook(webhook["id"])
    assert ss.Webhooks.list_webhooks().total_count == 0


def test_it_fails_verification_when_the_receiver_does_not_echo(sandbox, receiver):
    receiver.answer_challenges = False
    webhook = create(sandbox, sheet_id(client(sandbox), "Project Tracker"), receiver.url)
    result = enable(sandbox, webhook["id"])
    assert (result["enabled"], result["status"]) == (False, "DISABLED_VERIFICATION_FAILED")


def test_it_retries_then_disables_a_failing_callback(sandbox, receiver):
    sandbox.configure(smartsheet={"webhook_retry_attempts": 3, "webhook_retry_base_ms": 10})
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    webhook = create(sandbox, sid, receiver.url)
    enable(sandbox, webhook["id"])
    receiver.status = 500
    ss.Sheets.add_rows(sid, [row({column_ids(ss, sid)["Task"]: "x"})])
    sandbox.control("POST", "flush")
    *attempts, (_, notice) = receiver.callbacks
    assert len(attempts) == 3
    status = ss.Webhooks.get_webhook(webhook["id"])
    assert (status.enabled, str(status.status)) == (False, "DISABLED_CALLBACK_FAILED")
    # Then, as Smartsheet does, one status-change callback instead of events.
    assert json.loads(notice)["newWebhookStatus"] == "DISABLED_CALLBACK_FAILED"
    counters = sandbox.stats()["services"]["smartsheet"]["counters"]
    assert counters["webhook_callbacks_failed"] == 3


def test_it_refuses_plain_http_callbacks_off_loopback(sandbox):
    sid = sheet_id(client(sandbox), "Project Tracker")
    body = {
        "name": "x",
        "callbackUrl": "http://example.com/hook",
        "scope": "sheet",
        "scopeObjectId": sid,
        "events": ["*.*"],
        "version": 1,
    }
    response = httpx.post(f"{sandbox.smartsheet_base}/webhooks", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["errorCode"] == 1152
    missing = httpx.post(
        f"{sandbox.smartsheet_base}/webhooks",
        json={**body, "callbackUrl": "https://x.test/h", "scopeObjectId": 1},
        headers=AUTH,
    )
    assert missing.json()["errorCode"] == 1151


def test_callbacks_wait_out_the_configured_delay_so_changes_in_it_arrive_together(
    sandbox, receiver
):
    # No coalescing wait: only webhook_delay_ms holds the first change back for the second.
    sandbox.configure(smartsheet={"webhook_coalesce_ms": 0, "webhook_delay_ms": 1000})
    ss = client(sandbox)
    sid = sheet_id(ss, "Project Tracker")
    cols = column_ids(ss, sid)
    enable(sandbox, create(sandbox, sid, receiver.url)["id"])
    first = ss.Sheets.add_rows(sid, [row({cols["Task"]: "one"})]).result[0]
    second = ss.Sheets.add_rows(sid, [row({cols["Task"]: "two"})]).result[0]
    sandbox.control("POST", "flush")
    assert len(receiver.callbacks) == 1
    created = {
        e["id"]
        for e in json.loads(receiver.callbacks[0][1])["events"]
        if (e["objectType"], e["eventType"]) == ("row", "created")
    }
    assert created == {first.id, second.id}
