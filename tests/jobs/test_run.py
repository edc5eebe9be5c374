from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
import smartsheet
from django.db import connections

from jobs.models import Job, JobRow
from jobs.runner import job_run
from jobs.services import JobSpec, job_cancel, job_estimate, job_pause, job_resume, job_retry_failed
from sheets.models import CellEdit, Row
from tests.conftest import wait_until
from tests.jobs.conftest import (
    SUMMARY_PROMPT,
    column,
    created,
    first_rows,
    openai_requests,
    other_user_client,
    remote_values,
    spec,
)


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


def _run_in_thread(job_id: int) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["status"] = job_run(job_id=job_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _answered(job: Job) -> int:
    return JobRow.objects.filter(job=job, has_output=True).count()


@pytest.mark.django_db(transaction=True)
def test_a_user_edit_made_after_the_job_read_the_row_is_not_overwritten(editor, feedback, sandbox):
    rows = first_rows(feedback, 12)
    job = created(
        editor,
        spec(feedback, target="Summary", template=SUMMARY_PROMPT, selection="rows", row_ids=rows),
    )
    summary = column(feedback, "Summary")
    theirs = other_user_client(sandbox)
    theirs.Sheets.update_rows(
        feedback.pk,
        [
            smartsheet.models.Row(
                {"id": rows[3], "cells": [{"columnId": summary.pk, "value": "Mine, keep it"}]}
            )
        ],
    )

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    values = remote_values(sandbox, feedback, "Summary", rows)
    assert values[rows[3]] == "Mine, keep it"
    assert all(values[r] for r in rows)
    skipped = JobRow.objects.get(job=job, row_id=rows[3])
    assert skipped.status == "skipped"
    assert skipped.error.startswith("Changed by Pat Other at ")
    assert "not overwritten" in skipped.error
    job.refresh_from_db()
    assert (job.rows_done, job.rows_skipped) == (11, 1)


@pytest.mark.django_db(transaction=True)
def test_content_filtered_rows_fail_alone_and_retry_failed_runs_only_those(
    editor, feedback, sandbox
):
    sandbox.configure(openai={"content_filter_trigger": "Firefox"})
    rows = first_rows(feedback, 40)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    filtered = {
        r.pk
        for r in Row.objects.filter(pk__in=rows)
        if "Firefox" in r.display(column(feedback, "Feedback").pk)
    }
    assert 0 < len(filtered) < 20

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED_WITH_ERRORS

    failed = JobRow.objects.filter(job=job, status="failed")
    assert set(failed.values_list("row_id", flat=True)) == filtered
    assert all("content filter" in row.error for row in failed)
    assert JobRow.objects.filter(job=job, status="done").count() == 40 - len(filtered)

    sandbox.configure(openai={"content_filter_trigger": "FORBIDDEN-TOPIC"})
    asked_before = openai_requests(sandbox)
    job_retry_failed(user=editor, job_id=job.pk)
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED
    assert openai_requests(sandbox) - asked_before == len(filtered)
    assert set(remote_values(sandbox, feedback, "Sentiment", rows).values()) <= {
        "Positive",
        "Neutral",
        "Negative",
    }
    assert None not in remote_values(sandbox, feedback, "Sentiment", rows).values()


@pytest.mark.django_db(transaction=True)
def test_a_missing_deployment_stops_the_run_with_its_message(editor, feedback, sandbox, settings):
    settings.AZURE_OPENAI_DEPLOYMENTS = {
        **settings.AZURE_OPENAI_DEPLOYMENTS,
        "gpt-gone": {**settings.AZURE_OPENAI_DEPLOYMENTS["gpt-4o-mini"]},
    }
    job = created(
        editor,
        spec(feedback, deployment="gpt-gone", selection="rows", row_ids=first_rows(feedback, 30)),
    )

    assert job_run(job_id=job.pk) == Job.Status.FAILED

    job.refresh_from_db()
    assert "has no deployment named 'gpt-gone'" in job.reason
    assert job.rows_failed == 0  # the rows are not to blame: they wait for a retry
    assert openai_requests(sandbox) <= settings.JOBS_MAX_IN_FLIGHT


@pytest.mark.django_db(transaction=True)
def test_a_job_stops_when_more_than_half_of_its_first_20_rows_fail(
    editor, feedback, sandbox, settings
):
    sandbox.configure(openai={"content_filter_trigger": "e"})  # in every row's text
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 60)))

    assert job_run(job_id=job.pk) == Job.Status.FAILED

    job.refresh_from_db()
    assert "of the first" in job.reason and "content filter" in job.reason
    assert openai_requests(sandbox) <= 11 + settings.JOBS_MAX_IN_FLIGHT
    assert (
        JobRow.objects.filter(job=job, status="pending").count()
        >= 60 - 11 - settings.JOBS_MAX_IN_FLIGHT
    )


@pytest.mark.django_db(transaction=True)
def test_cancel_takes_effect_within_a_batch_and_leaves_the_rest_unwritten(
    editor, feedback, sandbox, settings
):
    sandbox.configure(openai={"latency_ms": 100})
    settings.JOBS_MAX_IN_FLIGHT = 2
    rows = first_rows(feedback, 80)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    thread, outcome = _run_in_thread(job.pk)
    wait_until(lambda: _answered(job) >= 4, timeout=30, what="a few answers")
    job_cancel(user=editor, job_id=job.pk)
    asked_at_cancel = openai_requests(sandbox)
    thread.join(30)

    assert outcome["status"] == Job.Status.CANCELLED
    # Calls in flight at the cancel finish; at most one more round starts before the runner
    # re-reads the status (every 50 ms).
    assert openai_requests(sandbox) - asked_at_cancel <= 2 * settings.JOBS_MAX_IN_FLIGHT
    job.refresh_from_db()
    assert job.rows_skipped > 60
    assert job.rows_done + job.rows_skipped == 80
    written = [v for v in remote_values(sandbox, feedback, "Sentiment", rows).values() if v]
    assert len(written) == job.rows_done
    assert "Cancelled by alice" in job.reason


@pytest.mark.django_db(transaction=True)
def test_pause_writes_what_was_answered_and_resume_finishes_without_asking_twice(
    editor, feedback, sandbox, settings, enqueued
):
    sandbox.configure(openai={"latency_ms": 100})
    settings.JOBS_MAX_IN_FLIGHT = 2
    rows = first_rows(feedback, 40)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    thread, outcome = _run_in_thread(job.pk)
    wait_until(lambda: _answered(job) >= 4, timeout=30, what="a few answers")
    job_pause(user=editor, job_id=job.pk)
    thread.join(30)

    assert outcome["status"] == Job.Status.PAUSED
    job.refresh_from_db()
    paused_done = job.rows_done
    assert 4 <= paused_done < 40
    assert not JobRow.objects.filter(job=job, status="running").exists()  # answered → written
    assert (
        len([v for v in remote_values(sandbox, feedback, "Sentiment", rows).values() if v])
        == paused_done
    )
    # Rows claimed a batch at a time but never sent went back as they were: not an attempt.
    pending = JobRow.objects.filter(job=job, status="pending")
    assert pending.count() == 40 - paused_done
    assert not pending.filter(attempts__gt=0).exists()

    asked = openai_requests(sandbox)
    job_resume(user=editor, job_id=job.pk)
    assert enqueued == [job.pk]
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED
    assert openai_requests(sandbox) - asked == 40 - paused_done
    assert None not in remote_values(sandbox, feedback, "Sentiment", rows).values()


@pytest.mark.django_db(transaction=True)
def test_a_budget_cap_pauses_the_job_with_the_reason_before_it_spends_more(
    editor, feedback, sandbox
):
    rows = first_rows(feedback, 60)
    job_spec = spec(feedback, selection="rows", row_ids=rows)
    estimate = job_estimate(user=editor, spec=job_spec)
    budget = (estimate.cost / 3).quantize(Decimal("0.000001"))
    job = created(editor, replace(job_spec, budget=budget), estimate=estimate)

    assert job_run(job_id=job.pk) == Job.Status.PAUSED

    job.refresh_from_db()
    assert "budget" in job.reason
    assert job.cost <= budget * Decimal("1.2")
    assert 5 <= job.rows_done < 40


@pytest.mark.django_db(transaction=True)
def test_a_new_date_column_is_created_and_filled_with_dates(editor, feedback, sandbox):
    rows = first_rows(feedback, 6)
    job = created(
        editor,
        JobSpec(
            sheet_id=feedback.pk,
            template="By which date should we answer {{Feedback}} received {{Received}}?",
            new_column_title="Answer by",
            new_column_type="DATE",
            selection="rows",
            row_ids=rows,
        ),
    )
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    assert column(feedback, "Answer by").type == "DATE"
    for value in remote_values(sandbox, feedback, "Answer by", rows).values():
        assert date.fromisoformat(value)


@pytest.mark.django_db(transaction=True)
def test_a_new_multi_dropdown_column_gets_a_subset_of_its_options(editor, feedback, sandbox):
    rows = first_rows(feedback, 6)
    job = created(
        editor,
        JobSpec(
            sheet_id=feedback.pk,
            template="Which topics does this feedback touch? {{Feedback}}",
            new_column_title="Topics",
            new_column_type="MULTI_PICKLIST",
            new_column_options=("Billing", "Support", "Product", "Speed"),
            selection="rows",
            row_ids=rows,
        ),
    )
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED

    for value in remote_values(sandbox, feedback, "Topics", rows).values():
        assert value is None or set(value.split(", ")) <= {"Billing", "Support", "Product", "Speed"}


@pytest.mark.django_db(transaction=True)
def test_answers_wait_out_a_smartsheet_outage_and_are_written_without_asking_again(
    editor, feedback, sandbox, settings
):
    settings.SMARTSHEET_BREAKER_FAIL_MAX = 100
    settings.JOBS_FLUSH_SECONDS = 0.1
    sandbox.configure(smartsheet={"fail_rate": 1.0, "fail_codes": [4004]})
    rows = first_rows(feedback, 10)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))

    assert job_run(job_id=job.pk, sliced=False) == Job.Status.QUEUED  # handed back for later

    assert JobRow.objects.filter(job=job, status="running", has_output=True).count() == 10
    asked = openai_requests(sandbox)
    sandbox.configure(smartsheet={"fail_rate": 0.0})
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED
    assert openai_requests(sandbox) == asked
    assert None not in remote_values(sandbox, feedback, "Sentiment", rows).values()


@pytest.mark.django_db(transaction=True)
def test_a_row_smartsheet_refuses_fails_alone_with_its_reason(editor, feedback, sandbox):
    rows = first_rows(feedback, 8)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    other_user_client(sandbox).Sheets.delete_rows(feedback.pk, [rows[5]])

    assert job_run(job_id=job.pk) == Job.Status.COMPLETED_WITH_ERRORS

    refused = JobRow.objects.get(job=job, row_id=rows[5])
    assert refused.status == "failed"
    assert "no longer exists" in refused.error
    assert JobRow.objects.filter(job=job, status="done").count() == 7
    values = remote_values(sandbox, feedback, "Sentiment", rows)
    assert rows[5] not in values and None not in values.values()
