from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.scheduling import jobs_sweep, priority_announce, priority_leave
from tests.jobs.conftest import created, first_rows, spec


@pytest.mark.django_db
def test_a_job_learns_that_one_of_higher_priority_runs_on_its_deployment(editor, feedback):
    rows = first_rows(feedback, 2)
    low = created(editor, spec(feedback, selection="rows", row_ids=rows, priority="low"))
    normal = created(editor, spec(feedback, selection="rows", row_ids=rows))
    high = created(editor, spec(feedback, selection="rows", row_ids=rows, priority="high"))

    assert priority_announce(job=normal, ttl=5) is False
    assert priority_announce(job=low, ttl=5) is True
    assert priority_announce(job=high, ttl=5) is False
    assert priority_announce(job=normal, ttl=5) is True
    priority_leave(job=high)
    assert priority_announce(job=normal, ttl=5) is False
    assert priority_announce(job=low, ttl=5) is True
    priority_leave(job=normal)
    assert priority_announce(job=low, ttl=5) is False


@pytest.mark.django_db
def test_a_job_that_stopped_announcing_itself_no_longer_holds_others_back(editor, feedback):
    rows = first_rows(feedback, 2)
    normal = created(editor, spec(feedback, selection="rows", row_ids=rows))
    high = created(editor, spec(feedback, selection="rows", row_ids=rows, priority="high"))
    priority_announce(job=high, ttl=-1)  # its worker died: the entry has expired
    assert priority_announce(job=normal, ttl=5) is False


@pytest.mark.django_db
def test_the_sweep_requeues_a_silent_running_job_and_resends_a_long_queued_one(
    editor, feedback, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from jobs import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.job_run_task, "apply_async", lambda args, **kw: sent.append(args[0]))
    rows = first_rows(feedback, 2)
    silent = created(editor, spec(feedback, selection="rows", row_ids=rows))
    waiting = created(editor, spec(feedback, selection="rows", row_ids=rows))
    fresh = created(editor, spec(feedback, selection="rows", row_ids=rows))
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=silent.pk).update(status="running", heartbeat_at=long_ago)
    Job.objects.filter(pk=waiting.pk).update(started_at=long_ago, heartbeat_at=long_ago)
    Job.objects.filter(pk=fresh.pk).update(status="running", heartbeat_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        requeued = jobs_sweep()

    assert sorted(requeued) == sorted([silent.pk, waiting.pk])
    assert sorted(sent) == sorted([silent.pk, waiting.pk])
    assert Job.objects.get(pk=silent.pk).status == "queued"
    assert Job.objects.get(pk=fresh.pk).status == "running"
