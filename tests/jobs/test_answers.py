"""Answers stored together: one statement for the answers that came back, only on rows still
running without an output, with each row's own value."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ai.models import UsageRecord
from jobs.answers import Answer, answers_store
from jobs.models import Job, JobRow
from jobs.runner import job_run
from jobs.sql import rows_update
from sheets.models import Row
from tests.jobs.conftest import created, first_rows, spec


@pytest.mark.django_db
def test_answers_that_came_back_together_are_stored_in_one_statement_skipped_rows_left(
    editor, feedback
):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 4)))
    rows = list(JobRow.objects.filter(job=job).order_by("row_number"))
    JobRow.objects.filter(pk__in=[r.pk for r in rows]).update(status=JobRow.Status.RUNNING)
    # Changed in the sheet since it was sent: the writer skipped it; its answer is not stored.
    JobRow.objects.filter(pk=rows[3].pk).update(status=JobRow.Status.SKIPPED)
    answers = [
        Answer(r.pk, r.row_id, "ok", cost=Decimal("0.0001") * i, value=value, prompt_tokens=i)
        for i, (r, value) in enumerate(
            zip(rows, ["Positive", ["a", "b"], None, "Negative"], strict=True), start=1
        )
    ]
    answers.append(Answer(rows[0].pk, rows[0].row_id, "item", "refused"))

    with CaptureQueriesContext(connection) as queries:
        answers_store(answers)

    assert len(queries) == 1
    assert [a.kind for a in answers] == ["ok", "ok", "ok", "gone", "item"]
    stored = {r.pk: r for r in JobRow.objects.filter(job=job)}
    assert [stored[r.pk].output for r in rows[:3]] == ["Positive", ["a", "b"], None]
    assert all(stored[r.pk].has_output for r in rows[:3])
    assert [stored[r.pk].prompt_tokens for r in rows[:3]] == [1, 2, 3]
    assert [stored[r.pk].cost for r in rows[:3]] == [
        Decimal("0.0001"),
        Decimal("0.0002"),
        Decimal("0.0003"),
    ]
    assert not stored[rows[3].pk].has_output and stored[rows[3].pk].output is None

    # A second answer for a row that has one already changes nothing.
    again = [Answer(rows[0].pk, rows[0].row_id, "ok", value="Neutral")]
    answers_store(again)
    assert again[0].kind == "gone"
    assert JobRow.objects.get(pk=rows[0].pk).output == "Positive"


@pytest.mark.django_db
def test_rows_update_sets_each_rows_own_json_and_time_in_batches(feedback):
    rows = list(Row.objects.filter(sheet=feedback).order_by("row_number")[:5])
    changes = [(row.pk, ({**row.cells, "x": {"value": i}}, None)) for i, row in enumerate(rows)]
    updated = rows_update(Row, changes, ["cells", "modified_at"], batch_size=2)
    assert sorted(updated) == sorted(row.pk for row in rows)
    for i, row in enumerate(Row.objects.filter(pk__in=updated).order_by("row_number")):
        assert row.cells["x"] == {"value": i}
        assert row.modified_at is None


@pytest.mark.django_db(transaction=True)
def test_a_runs_usage_records_are_saved_together_one_per_call(editor, feedback, sandbox):
    sandbox.configure(openai={"latency_ms": 50})
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 24)))
    table = UsageRecord._meta.db_table
    with CaptureQueriesContext(connection) as queries:  # the runner's main thread
        assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    records = UsageRecord.objects.filter(job_id=job.pk)
    assert records.count() == 24
    assert set(records.values_list("outcome", flat=True)) == {"ok"}
    assert all(r.user_id == editor.pk and r.prompt_tokens > 0 for r in records)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith(f'INSERT INTO "{table}"')]
    assert 1 <= len(inserts) < 24  # several calls' records in each INSERT, not one per call
