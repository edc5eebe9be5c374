from __future__ import annotations

import pytest
import smartsheet
from django.utils import timezone

from jobs.models import Job, JobRow
from jobs.runner import job_run
from jobs.services import job_undo
from sheets import client
from sheets.models import CellEdit
from tests.jobs.conftest import (
    SUMMARY_PROMPT,
    column,
    created,
    first_rows,
    openai_requests,
    other_user_client,
    remote_values,
    smartsheet_stats,
    spec,
)


def _edit_as_someone_else(sandbox, sheet, row_id: int, column_id: int, value) -> None:
    other_user_client(sandbox).Sheets.update_rows(
        sheet.pk,
        [smartsheet.models.Row({"id": row_id, "cells": [{"columnId": column_id, "value": value}]})],
    )


@pytest.mark.django_db(transaction=True)
def test_undo_restores_the_replaced_values_and_lists_cells_changed_since_as_conflicts(
    editor, feedback, sandbox
):
    rows = first_rows(feedback, 8)
    channel = column(feedback, "Channel")
    before = remote_values(sandbox, feedback, "Channel", rows)
    job = created(
        editor,
        spec(
            feedback,
            template="Which channel fits {{Feedback}} best?",
            target="Channel",
            selection="rows",
            row_ids=rows,
        ),
    )
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED
    _edit_as_someone_else(sandbox, feedback, rows[2], channel.pk, "Phone")

    result = job_undo(user=editor, job_id=job.pk)

    assert [row for row, _ in result.conflicts] == [rows[2]]
    assert "Changed by Pat Other" in result.conflicts[0][1]
    now = remote_values(sandbox, feedback, "Channel", rows)
    assert now[rows[2]] == "Phone"
    assert {r: now[r] for r in rows if r != rows[2]} == {r: before[r] for r in rows if r != rows[2]}
    assert sorted(result.restored) == sorted(r for r in rows if r != rows[2])
    undo_edits = CellEdit.objects.filter(source="undo", sheet=feedback)
    assert undo_edits.count() == 7
    assert all(edit.undoes.source == "job" for edit in undo_edits)
    # A second undo finds nothing left to restore.
    assert job_undo(user=editor, job_id=job.pk).restored == []


@pytest.mark.django_db(transaction=True)
def test_a_resumed_job_compares_before_rewriting_and_never_asks_the_model_again(
    editor, feedback, sandbox
):
    """A run died after sending its write and before recording it, and another had stored an
    answer without writing it: the next run writes the second, and only the second."""
    rows = first_rows(feedback, 2)
    summary = column(feedback, "Summary")
    job = created(
        editor,
        spec(feedback, template=SUMMARY_PROMPT, target="Summary", selection="rows", row_ids=rows),
    )
    landed, unsent = JobRow.objects.filter(job=job).order_by("row_number")
    client.rows_update(
        sheet_id=feedback.pk,
        rows=[{"id": landed.row_id, "cells": [{"columnId": summary.pk, "value": "Answer one"}]}],
    )
    JobRow.objects.filter(pk=landed.pk).update(
        status="running", output="Answer one", has_output=True, write_started_at=timezone.now()
    )
    JobRow.objects.filter(pk=unsent.pk).update(
        status="running", output="Answer two", has_output=True
    )
    Job.objects.filter(pk=job.pk).update(status="queued")
    writes_before = smartsheet_stats(sandbox)["routes"].get("PUT /sheets/{id}/rows", 0)

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    assert openai_requests(sandbox) == 0
    assert smartsheet_stats(sandbox)["routes"].get("PUT /sheets/{id}/rows", 0) == writes_before + 1
    assert remote_values(sandbox, feedback, "Summary", rows) == {
        landed.row_id: "Answer one",
        unsent.row_id: "Answer two",
    }
    history = other_user_client(sandbox).Cells.get_cell_history(
        feedback.pk, landed.row_id, summary.pk, include_all=True
    )
    assert [h.value for h in history.data] == ["Answer one"]
