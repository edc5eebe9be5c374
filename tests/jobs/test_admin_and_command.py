from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from jobs.models import Job, JobRow
from jobs.runner import job_run
from tests.jobs.conftest import created, first_rows, remote_values, spec


@pytest.mark.django_db(transaction=True)
def test_run_job_fills_a_new_column_from_the_command_line(staff, feedback, sandbox, capsys):
    rows = first_rows(feedback, 6)
    call_command(
        "run_job",
        "--sheet",
        "Customer Feedback",
        "--template",
        "Is this urgent, yes or no? {{Feedback}}",
        "--target",
        "new:Urgent:CHECKBOX",
        "--rows",
        "ids:" + ",".join(str(r) for r in rows),
        "--user",
        "carol",
    )
    out = capsys.readouterr().out
    assert "6 rows" in out
    assert "Job " in out and "6 written" in out
    job = Job.objects.get()
    assert job.status == Job.Status.COMPLETED and job.target_title == "Urgent"
    answers = dict(JobRow.objects.filter(job=job).values_list("row_id", "output"))
    assert {type(v) for v in answers.values()} == {bool}
    remote = remote_values(sandbox, feedback, "Urgent", rows)
    assert {r for r, v in remote.items() if v} == {r for r, v in answers.items() if v}


@pytest.mark.django_db(transaction=True)
def test_the_admin_lists_jobs_with_rows_and_retries_failed_rows(staff, feedback, sandbox, client):
    sandbox.configure(openai={"content_filter_trigger": "Firefox"})
    job = created(staff, spec(feedback, selection="rows", row_ids=first_rows(feedback, 30)))
    job_run(job_id=job.pk)
    failed = JobRow.objects.filter(job=job, status="failed").count()
    assert failed
    client.force_login(staff)

    listing = client.get(
        reverse("admin:jobs_job_changelist") + "?status__exact=completed_with_errors"
    )
    assert listing.status_code == 200 and "Fill Sentiment" in listing.content.decode()
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert page.status_code == 200 and "content filter" in page.content.decode()

    client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "retry_failed", "_selected_action": [job.pk]},
    )
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert JobRow.objects.filter(job=job, status="pending").count() == failed
