"""An AI job from the chat: proposed with its preview and estimate, started only on Apply."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat import services
from chat.models import ChangeSet
from chat.tools import ToolContext, tool_apply, tool_run
from sheets.models import SheetGrant
from tests.chat.conftest import reply_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(alice, tracker):
    SheetGrant.objects.create(sheet=tracker, user=alice, role="edit")
    return alice


def test_an_ai_job_is_proposed_with_preview_and_estimate_and_started_on_apply(
    client, editor, tracker, ai, queued, monkeypatch
):
    from jobs.models import Job
    from jobs.tasks import job_run_task

    started: list = []
    monkeypatch.setattr(job_run_task, "apply_async", lambda *a, **k: started.append(a))
    session = services.session_create(owner=editor, sheet=tracker)
    reply = reply_to(
        session, 'Run an AI job to fill the Risk column with prompt "Rate the risk of {{Task}}"'
    )
    (change_set,) = reply.change_sets.all()
    assert change_set.tool == "start_ai_job", reply.tool_results
    preview = change_set.preview
    assert preview["prompt"] == "Rate the risk of {{Task}}"
    assert len(preview["preview"]) == 3 and preview["estimate"]["rows"] == 200
    assert not Job.objects.exists()
    client.force_login(editor)
    client.post(
        reverse("chat:apply", args=[session.pk, change_set.pk]), headers={"HX-Request": "true"}
    )
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.Status.APPLIED, change_set.outcome_text
    job = Job.objects.get()
    assert job.owner == editor and job.started_at is not None
    assert job.target_title == "Risk" and job.rows_total == 200

    # Its progress can be read; cancelling it is proposed, then done on Apply.
    context = ToolContext(user=editor)
    progress = tool_run(name="get_job", arguments={"job_id": job.pk}, context=context)
    assert (progress["status"], progress["rows_total"]) == ("queued", 200)
    proposal = tool_run(name="cancel_job", arguments={"job_id": job.pk}, context=context)
    assert "Cancel job" in proposal.summary
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED  # proposing changed nothing
    outcome = tool_apply(
        name="cancel_job", preview=proposal.preview, context=ToolContext(user=editor)
    )
    job.refresh_from_db()
    assert outcome.status == "applied" and job.status == Job.Status.CANCELLED
