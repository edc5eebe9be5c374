from __future__ import annotations

import pytest

from jobs.models import Job, JobRow
from jobs.runner import job_run
from jobs.selectors import job_progress, job_rows_for_page, jobs_visible_to, sheet_job_activity
from jobs.services import job_start
from tests.jobs.conftest import column, created, first_rows, spec


@pytest.mark.django_db(transaction=True)
def test_jobs_are_listed_for_their_owner_and_staff_and_failures_come_first(
    editor, bob, staff, feedback, sandbox
):
    sandbox.configure(openai={"content_filter_trigger": "Firefox"})
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 30)))
    job_run(job_id=job.pk)

    assert list(jobs_visible_to(editor)) == [job]
    assert list(jobs_visible_to(staff)) == [job]
    assert list(jobs_visible_to(bob)) == []
    rows = list(job_rows_for_page(job=job))
    failed = [r for r in rows if r.status == "failed"]
    assert failed and rows[: len(failed)] == failed
    progress = job_progress(job=Job.objects.get(pk=job.pk))
    assert (progress["status"], progress["percent"]) == ("completed_with_errors", 100)
    assert progress["rows_failed"] == len(failed)


@pytest.mark.django_db(transaction=True)
def test_the_grid_sees_a_started_jobs_target_cells_as_queued_until_written(editor, feedback):
    rows = first_rows(feedback, 3)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    target = column(feedback, "Sentiment").pk

    def states():
        _, marks = sheet_job_activity(sheet_id=feedback.pk, row_ids=list(rows))
        return {key: mark.state for key, mark in marks.items()}

    assert states() == {}  # not started
    job_start(user=editor, job_id=job.pk)
    assert states() == {(row, target): "queued" for row in rows}
    JobRow.objects.filter(job=job, row_id=rows[0]).update(status="done")
    assert (rows[0], target) not in states()
