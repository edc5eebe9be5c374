"""Undoing a job: put back the values it replaced, only where the cell still holds its answer.

One read of the target column tells which cells still hold what the job wrote; those get their
old values back in bulk (≤ 500 rows a request), journaled as undo edits of the job's edits. Cells
changed since are listed as conflicts and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from jobs.events import job_progress_send
from jobs.models import Job, JobRow
from jobs.services.control import job_for_owner
from jobs.services.plan import JobInvalid
from jobs.writer import mirror_rows_store, row_changed_note
from sheets import client
from sheets.models import CellEdit, Column
from sheets.services.cells import (
    announce_rows,
    cell_display,
    cell_holds,
    cell_payload,
    refusal_message,
    remote_cells,
    sheet_edit_lock,
)


@dataclass
class UndoResult:
    restored: list[int] = field(default_factory=list)  # row ids
    conflicts: list[tuple[int, str]] = field(default_factory=list)  # (row id, why)

    def summary(self) -> str:
        text = f"{len(self.restored)} cell(s) restored"
        if self.conflicts:
            text += f"; {len(self.conflicts)} changed since the job wrote them, left as they are"
        return text + "."


def job_undo(*, user, job_id: int) -> UndoResult:
    job = job_for_owner(user=user, job_id=job_id)
    if job.status in Job.ACTIVE:
        raise JobInvalid("Pause or cancel the job before undoing it.")
    target = Column.objects.filter(pk=job.target_column_id, sheet_id=job.sheet_id).first()
    if target is None:
        raise JobInvalid("The job's column was deleted from the sheet; nothing to undo.")
    done = list(
        JobRow.objects.filter(job=job, status=JobRow.Status.DONE, cell_edit__isnull=False)
        .select_related("cell_edit")
        .exclude(cell_edit__undone_by__isnull=False)
    )
    result = UndoResult()
    if not done:
        return result
    with sheet_edit_lock(sheet_id=job.sheet_id):
        remote = client.sheet_get(
            sheet_id=job.sheet_id, columnIds=[target.pk], include="writerInfo"
        )
        rows = {int(r["id"]): r for r in remote.get("rows") or ()}
        restore: list[JobRow] = []
        for job_row in done:
            row = rows.get(job_row.row_id)
            if row is None:
                result.conflicts.append((job_row.row_id, "The row was deleted from the sheet."))
                continue
            cell = remote_cells(row).get(target.pk, {})
            if cell_holds(cell, job_row.cell_edit.new_value):
                restore.append(job_row)
            else:
                result.conflicts.append(
                    (job_row.row_id, row_changed_note(row).replace("the job read", "the job wrote"))
                )
        outcome = (
            client.rows_update_json(
                sheet_id=job.sheet_id,
                rows=[
                    {"id": r.row_id, "cells": [cell_payload(target, r.cell_edit.old_value)]}
                    for r in restore
                ],
            )
            if restore
            else client.BulkWriteResult()
        )
        refused = {restore[f.index].row_id: f for f in outcome.failures}
        written = {int(row["id"]): row for row in outcome.rows}
        now = timezone.now()
        edits = []
        with transaction.atomic():
            mirror_rows_store(job.sheet_id, target, list(written.values()))
            for job_row in restore:
                if job_row.row_id in refused:
                    failure = refused[job_row.row_id]
                    message = refusal_message(failure.error_code, failure.message)
                    result.conflicts.append((job_row.row_id, message))
                    continue
                if job_row.row_id not in written:
                    continue
                edit = job_row.cell_edit
                new_cell = remote_cells(written[job_row.row_id]).get(target.pk, {})
                edits.append(
                    CellEdit(
                        user=user,
                        sheet_id=job.sheet_id,
                        row_id=job_row.row_id,
                        column_id=target.pk,
                        expected=edit.new_value,
                        old_value=edit.new_value,
                        old_display=edit.new_display,
                        new_value=edit.old_value,
                        new_display=cell_display(new_cell),
                        source=CellEdit.Source.UNDO,
                        status=CellEdit.Status.APPLIED,
                        version=outcome.version,
                        applied_at=now,
                        undoes=edit,
                    )
                )
                result.restored.append(job_row.row_id)
            CellEdit.objects.bulk_create(edits, batch_size=500)
            Job.objects.filter(pk=job.pk).update(undone_at=now)
            if written:
                announce_rows(sheet_id=job.sheet_id, version=outcome.version, changed=written)
    job.undone_at = now
    job_progress_send(job=job)
    return result
