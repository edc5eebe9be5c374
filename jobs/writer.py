"""Writing a job's answers back: one conflict read, bulk writes, mirror and journal, per flush.

A flush costs 1 + ceil(rows / 500) Smartsheet calls:
1. one incremental read (`rowsModifiedSince` the previous flush's read, target column only, with
   who changed each row) finds every row of the job changed since the job read it. Those whose
   target cell no longer holds the value the job started from are skipped with "changed by … at
   …" — never overwritten — and rows not yet answered are skipped before the model is asked.
   A row whose earlier write may have landed (a crash between sending and recording) is
   compared too: if the cell already holds the job's answer it is done without a second write;
2. the answers go out in `rows_update` (≤ 500 rows a request, partial success); rows Smartsheet
   refuses fail alone with its reason;
3. mirror, journal (CellEdit, source "job") and JobRows are saved in one transaction, and open
   grids are told on commit.
The grid's edit lock is held from the read to the journal, as `cell_update` holds it, so a
person's edit through this app cannot slip between our check and our write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.models import Job, JobRow
from jobs.sql import rows_update
from sheets import client
from sheets.models import CellEdit, Column, Row
from sheets.services.cells import (
    announce_rows,
    cell_display,
    cell_holds,
    cell_payload,
    refusal_message,
    remote_cells,
    sheet_edit_lock,
)

logger = logging.getLogger(__name__)

_UNFINISHED = (JobRow.Status.PENDING, JobRow.Status.RUNNING)


@dataclass
class FlushResult:
    written: list[int] = field(default_factory=list)  # row ids
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    calls: int = 0


def row_changed_note(row: dict[str, Any], *, since: str = "the job read it") -> str:
    by = row.get("modifiedBy") or {}
    name = by.get("name") or by.get("email") or "someone"
    at = row.get("modifiedAt")
    when = parse_datetime(at.replace("Z", "+00:00")) if isinstance(at, str) else None
    stamp = when.strftime("%Y-%m-%d %H:%M UTC") if when else "an unknown time"
    return f"Changed by {name} at {stamp} since {since}; not overwritten."


def _changed_rows(job: Job, target: Column) -> dict[int, dict[str, Any]]:
    since = (job.read_at or job.created_at) - timedelta(seconds=settings.SHEETS_SYNC_CLOCK_SKEW)
    remote = client.sheet_get(
        sheet_id=job.sheet_id,
        rowsModifiedSince=since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        columnIds=[target.pk],
        include="writerInfo",
    )
    return {int(r["id"]): r for r in remote.get("rows") or ()}


def _skip_changed(job: Job, target: Column, changed: dict[int, dict], ready: set[int]) -> list:
    """Unfinished rows not in this flush whose cell changed: skipped before they cost a call."""
    skipped = []
    ids = [pk for pk in changed if pk not in ready]
    for start in range(0, len(ids), 500):
        for job_row in JobRow.objects.filter(
            job=job, row_id__in=ids[start : start + 500], status__in=_UNFINISHED
        ).only("pk", "row_id", "value_before", "output", "has_output"):
            cell = remote_cells(changed[job_row.row_id]).get(target.pk, {})
            if cell_holds(cell, job_row.value_before):
                continue
            if job_row.has_output and cell_holds(cell, job_row.output):
                continue  # ours, written by a run that died before recording it
            if JobRow.objects.filter(pk=job_row.pk, status__in=_UNFINISHED).update(
                status=JobRow.Status.SKIPPED, error=row_changed_note(changed[job_row.row_id])
            ):
                skipped.append(job_row.row_id)
    return skipped


def job_rows_flush(*, job: Job, target: Column, rows: list[JobRow]) -> FlushResult:
    """Write the answered `rows` (status running, output stored) unless their cell changed."""
    result = FlushResult()
    calls_before = client.api_calls_made()
    with sheet_edit_lock(sheet_id=job.sheet_id):
        read_at = timezone.now()
        changed = _changed_rows(job, target)
        ready = {r.row_id for r in rows}
        result.skipped.extend(_skip_changed(job, target, changed, ready))
        to_write: list[JobRow] = []
        already: list[JobRow] = []
        conflicts: list[JobRow] = []
        before: dict[int, dict] = {}
        for job_row in rows:
            remote = changed.get(job_row.row_id)
            if remote is None:
                to_write.append(job_row)
                continue
            cell = remote_cells(remote).get(target.pk, {})
            before[job_row.row_id] = cell
            if job_row.write_started_at and cell_holds(cell, job_row.output):
                already.append(job_row)
            elif not cell_holds(cell, job_row.value_before):
                job_row.error = row_changed_note(remote)
                conflicts.append(job_row)
            else:
                to_write.append(job_row)
        if to_write:
            JobRow.objects.filter(pk__in=[r.pk for r in to_write]).update(write_started_at=read_at)
            outcome = client.rows_update_json(
                sheet_id=job.sheet_id,
                rows=[
                    {"id": r.row_id, "cells": [cell_payload(target, r.output)]} for r in to_write
                ],
            )
        else:
            outcome = client.BulkWriteResult()
        refused = {to_write[f.index].row_id: f for f in outcome.failures}
        written = {int(row["id"]): row for row in outcome.rows}
        with transaction.atomic():
            now = timezone.now()
            mirror_rows_store(job.sheet_id, target, [*written.values()])
            journaled = _journal(job, target, to_write, written, before, outcome.version, now)
            done = [r for r in to_write if r.row_id in journaled and r.row_id not in refused]
            # One statement links each row to its journal entry (this flush's are the ones
            # applied at `now`), rather than an UPDATE per row.
            JobRow.objects.filter(pk__in=[r.pk for r in done]).update(
                status=JobRow.Status.DONE,
                error="",
                updated_at=now,
                cell_edit=Subquery(
                    CellEdit.objects.filter(
                        sheet_id=job.sheet_id,
                        row_id=OuterRef("row_id"),
                        column_id=target.pk,
                        source=CellEdit.Source.JOB,
                        applied_at=now,
                    ).values("pk")[:1]
                ),
            )
            result.written.extend(r.row_id for r in done)
            JobRow.objects.filter(pk__in=[r.pk for r in already]).update(
                status=JobRow.Status.DONE, updated_at=now
            )
            result.written.extend(r.row_id for r in already)
            # Refusals and conflicts are few, and each has its own reason.
            for job_row in to_write:
                failure = refused.get(job_row.row_id)
                if failure is not None:
                    JobRow.objects.filter(pk=job_row.pk).update(
                        status=JobRow.Status.FAILED,
                        error=refusal_message(failure.error_code, failure.message),
                        updated_at=now,
                    )
                    result.failed.append(job_row.row_id)
            for job_row in conflicts:
                JobRow.objects.filter(pk=job_row.pk).update(
                    status=JobRow.Status.SKIPPED, error=job_row.error, updated_at=now
                )
                result.skipped.append(job_row.row_id)
            Job.objects.filter(pk=job.pk).update(read_at=read_at)
            job.read_at = read_at
            if written:
                announce_rows(sheet_id=job.sheet_id, version=outcome.version, changed=written)
    result.calls = client.api_calls_made() - calls_before
    return result


def job_rows_flush_safely(*, job: Job, target: Column, ids: list[int]) -> FlushResult | Exception:
    """`job_rows_flush` for the runner's writer thread: the exception is returned, not raised
    (SmartsheetUnavailable is expected; anything else is logged with its traceback)."""
    rows = list(JobRow.objects.filter(pk__in=ids, status=JobRow.Status.RUNNING, has_output=True))
    try:
        return job_rows_flush(job=job, target=target, rows=rows)
    except client.SmartsheetUnavailable as exc:
        return exc
    except Exception as exc:
        logger.exception("job %s: writing %d rows failed", job.pk, len(ids))
        return exc


def mirror_rows_store(sheet_id: int, target: Column, rows: list[dict[str, Any]]) -> None:
    """Merge written rows' cells into the mirror in a few statements (not one per row)."""
    by_id = {r["id"]: r for r in rows}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        mirrored = list(
            Row.objects.select_for_update().filter(
                sheet_id=sheet_id, pk__in=ids[start : start + 500]
            )
        )
        for row in mirrored:
            written = by_id[row.pk]
            for column_id, cell in remote_cells(written).items():
                if cell:
                    row.cells[str(column_id)] = cell
                else:
                    row.cells.pop(str(column_id), None)
            modified = written.get("modifiedAt")
            if isinstance(modified, str):
                modified = parse_datetime(modified.replace("Z", "+00:00"))
            if isinstance(modified, datetime):
                row.modified_at = modified
        rows_update(
            Row,
            [(row.pk, (row.cells, row.modified_at)) for row in mirrored],
            ["cells", "modified_at"],
        )


def _journal(
    job: Job,
    target: Column,
    rows: list[JobRow],
    written: dict[int, dict],
    before: dict[int, dict],
    version: int | None,
    now,
) -> set[int]:
    """Journal the written cells (applied at `now`); the row ids journaled."""
    edits = {}
    for job_row in rows:
        if job_row.row_id not in written:
            continue
        old = before.get(job_row.row_id)
        new_cell = remote_cells(written[job_row.row_id]).get(target.pk, {})
        edits[job_row.row_id] = CellEdit(
            user_id=job.owner_id,
            sheet_id=job.sheet_id,
            row_id=job_row.row_id,
            column_id=target.pk,
            expected=job_row.value_before,
            old_value=old.get("value") if old is not None else job_row.value_before,
            old_formula=(old or {}).get("formula", ""),
            old_display=cell_display(old) if old is not None else _display(job_row.value_before),
            new_value=job_row.output,
            new_display=cell_display(new_cell),
            source=CellEdit.Source.JOB,
            status=CellEdit.Status.APPLIED,
            version=version,
            applied_at=now,
        )
    CellEdit.objects.bulk_create(edits.values(), batch_size=500)
    return set(edits)


def _display(value: Any) -> str:
    return "" if value is None else str(value)
