"""The webhook callbacks our own writes trigger cost no Smartsheet call: the mirror has them."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from sheets.models import Sheet
from tests.sheets.test_webhooks import SECRET, _post, _sign


@pytest.fixture
def hooked(db) -> Sheet:
    return Sheet.objects.create(
        id=1001, name="Hooked", webhook_id=555, webhook_status="ENABLED",
        webhook_shared_secret=SECRET,
    )  # fmt: skip


@pytest.fixture
def enqueued(monkeypatch) -> list:
    from sheets.tasks import sheet_sync_task

    calls: list = []
    monkeypatch.setattr(sheet_sync_task, "apply_async", lambda args, **kw: calls.append(args))
    return calls


def _callback(*agents: str | None) -> bytes:
    events = []
    for agent in agents:
        event = {"objectType": "cell", "eventType": "updated", "rowId": 1, "columnId": 2}
        if agent:
            event["changeAgent"] = agent
        events.append(event)
    return json.dumps(
        {"nonce": f"n-{len(agents)}-{agents}", "webhookId": 555, "scope": "sheet",
         "scopeObjectId": 1001, "events": events}
    ).encode()  # fmt: skip


@pytest.mark.django_db
def test_a_callback_whose_events_all_carry_our_change_agent_schedules_no_sync(
    client, hooked, enqueued
):
    ours = settings.SMARTSHEET_CHANGE_AGENT
    body = _callback(ours, ours)
    answer = _post(client, body, _sign(body))
    assert answer.status_code == 200
    assert answer.json() == {"status": "own change"}
    assert enqueued == []


@pytest.mark.django_db
def test_a_callback_with_anyone_elses_event_still_schedules_a_sync(client, hooked, enqueued):
    ours = settings.SMARTSHEET_CHANGE_AGENT
    for agents in ((ours, None), (ours, "someone-elses-integration")):
        body = _callback(*agents)
        assert _post(client, body, _sign(body)).status_code == 200
    assert len(enqueued) == 1  # the second callback joins the sync the first scheduled
