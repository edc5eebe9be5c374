"""An AI job from the chat: proposed with its preview and estimate, started only on Apply."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat import services
from chat.models import ChangeSet, Message
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


@pytest.fixture
def job(editor, tracker, monkeypatch):
    """A started job of the editor's on Project Tracker (its runner recorded, not run)."""
    from jobs.services import job_create, job_start
    from jobs.services.plan import JobSpec
    from jobs.tasks import job_run_task

    monkeypatch.setattr(job_run_task, "apply_async", lambda *a, **k: None)
    spec = JobSpec(
        sheet_id=tracker.pk,
        template="Rate the risk of {{Task}}",
        new_column_title="Risk",
        name="Risk scores",
    )
    created = job_create(user=editor, spec=spec)
    return job_start(user=editor, job_id=created.pk)


def test_asking_how_a_job_is_doing_reads_it_with_get_job(editor, job, ai, queued):
    session = services.session_create(owner=editor)
    reply = reply_to(session, f"How is job {job.pk} doing?")
    assert reply.status == Message.Status.COMPLETE, reply.error
    assert [(c["name"], c["arguments"]) for c in reply.tool_calls] == [
        ("get_job", {"job_id": job.pk})
    ]
    assert f"Job #{job.pk} “Risk scores” on Project Tracker is queued" in reply.content
    assert f"0 of {job.rows_total} rows done" in reply.content
    assert not reply.change_sets.exists()


def test_the_status_of_my_job_reads_the_job_this_chat_started(editor, job, ai, queued):
    session = services.session_create(owner=editor)
    reply = reply_to(session, "What's the status of my job?")
    assert reply.tool_calls == [] and "Which job" in reply.content  # none named yet

    services.message_add(
        session=session,
        role=Message.Role.EVENT,
        content=f"The user pressed Apply on “Fill Risk”: Job #{job.pk} “Risk scores” started.",
    )
    reply = reply_to(session, "What's the status of my job?")
    assert [(c["name"], c["arguments"]) for c in reply.tool_calls] == [
        ("get_job", {"job_id": job.pk})
    ]
    assert f"Job #{job.pk}" in reply.content and "queued" in reply.content


def test_someone_elses_job_is_not_read_from_the_chat(bob, job, ai, queued):
    reply = reply_to(services.session_create(owner=bob), f"How is job {job.pk} doing?")
    assert [c["name"] for c in reply.tool_calls] == ["get_job"]
    assert f"You have no job #{job.pk}" in reply.content
    assert "Risk scores" not in reply.content


def test_cancelling_a_job_from_the_chat_waits_for_apply(client, editor, job, ai, queued):
    from jobs.models import Job

    session = services.session_create(owner=editor)
    reply = reply_to(session, f"Cancel job {job.pk}")
    assert reply.status == Message.Status.COMPLETE, reply.error
    (change_set,) = reply.change_sets.all()
    assert change_set.tool == "cancel_job" and change_set.arguments == {"job_id": job.pk}
    assert "press Apply" in reply.content
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED  # proposing cancelled nothing

    client.force_login(editor)
    page = client.get(reverse("chat:session", args=[session.pk])).content.decode()
    assert f"Cancel job #{job.pk}" in page and 'data-testid="apply"' in page
    client.post(
        reverse("chat:apply", args=[session.pk, change_set.pk]), headers={"HX-Request": "true"}
    )
    change_set.refresh_from_db()
    job.refresh_from_db()
    assert change_set.status == ChangeSet.Status.APPLIED, change_set.outcome_text
    assert job.status == Job.Status.CANCELLED
    event = session.messages.filter(role=Message.Role.EVENT).last()
    assert "pressed Apply" in event.content and f"Job #{job.pk}" in event.content
