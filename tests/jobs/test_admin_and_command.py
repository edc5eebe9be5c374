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


def _big_job(staff, feedback, *, rows: int, failed_every: int) -> Job:
    """A job of `rows` rows without running it: JobRows in bulk, every `failed_every`-th failed
    (the last ones by row number, so "failures first" has to reorder)."""
    job = created(staff, spec(feedback, selection="rows", row_ids=first_rows(feedback, 1)))
    JobRow.objects.filter(job=job).delete()
    JobRow.objects.bulk_create(
        JobRow(
            job=job,
            row_id=10_000_000 + n,
            row_number=n,
            status="failed" if n % failed_every == 0 else "done",
            error=f"bad output on row {n}" if n % failed_every == 0 else "",
        )
        for n in range(1, rows + 1)
    )
    return job


@pytest.mark.django_db
def test_a_5000_row_jobs_admin_page_shows_50_rows_failures_first_and_links_the_rest(
    staff, feedback, client
):
    job = _big_job(staff, feedback, rows=5000, failed_every=200)  # 25 failed
    client.force_login(staff)

    page = client.get(reverse("admin:jobs_job_change", args=[job.pk]))

    assert page.status_code == 200
    inline = page.context["inline_admin_formsets"][0]
    shown = [form.original for form in inline]
    assert len(shown) == 50
    assert [r.status for r in shown[:25]] == ["failed"] * 25
    assert [r.row_number for r in shown[:25]] == list(range(200, 5001, 200))
    assert [r.row_number for r in shown[25:]] == list(range(1, 26))  # then the others in order
    html = page.content.decode()
    rows_url = reverse("admin:jobs_jobrow_changelist") + f"?job__id__exact={job.pk}"
    assert "5000 rows (50 shown below" in html
    assert f'href="{rows_url}"' in html
    assert f'href="{rows_url}&amp;status__exact=failed">25 failed' in html


@pytest.mark.django_db
def test_the_jobrow_changelist_filters_by_job_and_status_and_searches_errors(
    staff, feedback, client
):
    job = _big_job(staff, feedback, rows=300, failed_every=100)
    other = _big_job(staff, feedback, rows=10, failed_every=5)
    client.force_login(staff)
    url = reverse("admin:jobs_jobrow_changelist")

    failed = client.get(url, {"job__id__exact": job.pk, "status__exact": "failed"})
    assert failed.status_code == 200
    assert {r.row_number for r in failed.context["cl"].result_list} == {100, 200, 300}
    assert {r.job_id for r in failed.context["cl"].result_list} == {job.pk}

    found = client.get(url, {"q": "bad output on row 5"})
    assert {(r.job_id, r.row_number) for r in found.context["cl"].result_list} == {(other.pk, 5)}
    everything = client.get(url, {"job__id__exact": other.pk})
    assert everything.context["cl"].result_count == 10


@pytest.mark.django_db(transaction=True)
def test_the_admin_cancels_queued_jobs_and_says_which_it_could_not(staff, feedback, client):
    queued = created(staff, spec(feedback, selection="rows", row_ids=first_rows(feedback, 5)))
    done = _big_job(staff, feedback, rows=3, failed_every=10)
    Job.objects.filter(pk=done.pk).update(status=Job.Status.COMPLETED)
    client.force_login(staff)

    page = client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "cancel", "_selected_action": [queued.pk, done.pk]},
        follow=True,
    )

    queued.refresh_from_db()
    assert queued.status == Job.Status.CANCELLED
    assert set(JobRow.objects.filter(job=queued).values_list("status", flat=True)) == {"skipped"}
    done.refresh_from_db()
    assert done.status == Job.Status.COMPLETED
    notes = [str(m) for m in page.context["messages"]]
    assert "1 job(s) cancelled." in notes
    assert any("cannot be cancelled" in n for n in notes)


@pytest.mark.django_db
def test_the_job_changelist_filters_by_status_sheet_and_owner(staff, editor, feedback, client):
    mine = created(staff, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))
    theirs = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))
    Job.objects.filter(pk=theirs.pk).update(status=Job.Status.FAILED)
    client.force_login(staff)
    url = reverse("admin:jobs_job_changelist")

    def listed(**query) -> set[int]:
        page = client.get(url, query)
        assert page.status_code == 200
        return {j.pk for j in page.context["cl"].result_list}

    assert listed(owner__id__exact=editor.pk) == {theirs.pk}
    assert listed(status__exact="queued") == {mine.pk}
    assert listed(sheet__id__exact=feedback.pk) == {mine.pk, theirs.pk}
