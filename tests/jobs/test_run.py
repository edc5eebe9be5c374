from __future__ import annotations

import pytest

from jobs.models import Job, JobRow
from jobs.runner import job_run
from sheets.models import CellEdit, Row
from tests.jobs.conftest import column, created, first_rows, other_user_client, spec


@pytest.mark.django_db(transaction=True)
def test_a_job_fills_sentiment_with_the_picklists_options_and_journals_each_cell(
    editor, feedback, sandbox
):
    rows = first_rows(feedback, 30)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    job.refresh_from_db()
    assert (job.rows_total, job.rows_done, job.rows_failed) == (30, 30, 0)
    assert job.prompt_tokens > 0 and job.cost > 0
    sentiment = column(feedback, "Sentiment")
    remote = other_user_client(sandbox).Sheets.get_sheet(feedback.pk, row_ids=list(rows))
    values = {
        int(r.id): next(c.value for c in r.cells if c.column_id == sentiment.pk)
        for r in remote.rows
    }
    assert set(values.values()) <= {"Positive", "Neutral", "Negative"}
    assert len(set(values.values())) > 1
    mirrored = {r.pk: r.value(sentiment.pk) for r in Row.objects.filter(pk__in=rows)}
    assert mirrored == values
    edits = CellEdit.objects.filter(sheet=feedback, source="job", column_id=sentiment.pk)
    assert edits.count() == 30
    assert set(JobRow.objects.filter(job=job).values_list("status", flat=True)) == {"done"}
