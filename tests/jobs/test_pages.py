"""The jobs pages: the new-job form (validation, preview, estimate, start), the list, one job
and its buttons, and who may see or steer what."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import smartsheet
from django.urls import reverse

from jobs.models import Job, JobRow
from jobs.runner import job_run
from jobs.services import job_pause, job_plan
from sheets.models import CellEdit, SheetGrant
from tests.jobs.conftest import (
    SENTIMENT_PROMPT,
    column,
    created,
    first_rows,
    openai_requests,
    other_user_client,
    smartsheet_stats,
    spec,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


def new_url(sheet, **query) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"{reverse('jobs:new')}?sheet={sheet.pk}{extra}"


def form_data(sheet, **fields) -> dict:
    return {
        "template": SENTIMENT_PROMPT,
        "target": str(column(sheet, "Sentiment").pk),
        "selection": "all",
        "batch_size": "100",
        "priority": "normal",
        "deployment": "gpt-4o-mini",
        **fields,
    }


def estimate_token(html: str) -> str:
    return re.search(r'name="estimate" value="([^"]+)"', html).group(1)


# --- The form -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_form_offers_each_column_to_insert_and_the_columns_a_job_can_fill(
    client, editor, feedback
):
    client.force_login(editor)
    html = client.get(new_url(feedback)).content.decode()
    for title in ("Customer", "Feedback", "Channel", "Received"):
        assert f'data-insert="{{{{{title}}}}}"' in html
    assert ">Sentiment (dropdown)</option>" in html
    assert ">Follow up (checkbox)</option>" in html
    assert 'value="new"' in html
    # Filling a column overwrites it: none is preselected.
    assert re.search(r'<option value="" selected>Choose the column to fill…</option>', html)
    assert 'name="batch_size" value="100"' in html
    # "selected rows" is offered only when the grid passed some.
    assert 'value="rows"' not in html
    selected = client.get(new_url(feedback, rows="1,2,3")).content.decode()
    assert re.search(r'value="rows"[^>]*checked', selected)
    assert "(3 in the grid)" in selected


@pytest.mark.django_db
def test_a_viewer_is_refused_the_form_and_the_start_and_a_stranger_finds_nothing(
    client, viewer, feedback, django_user_model
):
    client.force_login(viewer)
    assert client.get(new_url(feedback)).status_code == 403
    data = form_data(feedback, action="start")
    assert client.post(new_url(feedback), data).status_code == 403
    stranger = django_user_model.objects.create_user("dave", "dave@example.com", "pw")
    client.force_login(stranger)
    assert client.get(new_url(feedback)).status_code == 404
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_an_unknown_reference_is_shown_under_the_prompt_with_the_closest_titles(
    client, editor, feedback, sandbox
):
    client.force_login(editor)
    data = form_data(feedback, template="Classify {{Feedbak}}", action="preview")
    html = client.post(new_url(feedback), data, **HTMX).content.decode()
    error = re.search(r'data-testid="error-template">([^<]*)<', html).group(1)
    assert "no column “Feedbak”" in error and "{{Feedback}}" in error
    assert 'aria-invalid="true"' in html
    assert openai_requests(sandbox) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"target": ""}, "target", "Choose the column to fill."),
        ({"batch_size": "501"}, "batch_size", "less than or equal to 500"),
        ({"batch_size": "0"}, "batch_size", "greater than or equal to 1"),
        ({"target": "new", "new_column_title": ""}, "new_column_title", "Give the new column"),
        (
            {"target": "new", "new_column_title": "Mood", "new_column_type": "PICKLIST"},
            "new_column_options",
            "needs its options",
        ),
        ({"selection": "filter", "filter_text": ""}, "filter_text", "Write a filter like"),
        (
            {"selection": "filter", "filter_text": "Received > soon"},
            "filter_text",
            "Compare Received with a date like",
        ),
        ({"budget": "-1"}, "budget", "greater than or equal to"),
        ({"deployment": "gpt-5"}, "deployment", "Select a valid choice"),
    ],
)
def test_each_mistake_is_shown_under_its_field(client, editor, feedback, fields, field, message):
    client.force_login(editor)
    data = form_data(feedback, action="preview", **fields)
    html = client.post(new_url(feedback), data, **HTMX).content.decode()
    shown = re.search(rf'data-testid="error-{field}">([^<]*)<', html)
    assert shown, f"no error under {field}"
    assert message in shown.group(1)


@pytest.mark.django_db
def test_a_new_column_whose_title_the_sheet_has_is_refused_by_the_service(client, editor, feedback):
    client.force_login(editor)
    data = form_data(feedback, target="new", new_column_title="channel", action="preview")
    html = client.post(new_url(feedback), data, **HTMX).content.decode()
    assert 'data-testid="form-errors"' in html
    assert "already has a column “channel”" in html


@pytest.mark.django_db
def test_preview_shows_three_answered_rows_and_the_estimate_and_writes_nothing(
    client, editor, feedback, sandbox
):
    client.force_login(editor)
    before = smartsheet_stats(sandbox)["routes"]
    data = form_data(feedback, selection="filter", filter_text="Channel = Email")
    response = client.post(new_url(feedback), {**data, "action": "preview"}, **HTMX)
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith('<form id="job-form"')  # the form alone, swapped in place
    assert html.count('data-testid="preview-row"') == 3
    answers = re.findall(r'class="preview-answer">([^<]*)<', html)
    assert len(answers) == 3 and set(answers) <= {"Positive", "Neutral", "Negative"}
    rows = int(re.search(r'data-testid="estimate-rows">([\d,]+)<', html).group(1).replace(",", ""))
    emails = job_plan(
        user=editor, spec=spec(feedback, selection="filter", filter_text="Channel = Email")
    )
    assert rows == emails.rows.count() < feedback.rows.count()
    assert 'data-testid="estimate-cost">$' in html
    assert 'data-testid="start"' in html
    assert openai_requests(sandbox) == 3
    assert smartsheet_stats(sandbox)["routes"] == before
    assert not Job.objects.exists() and not CellEdit.objects.exists()


@pytest.mark.django_db
def test_start_needs_the_preview_of_the_same_settings(client, editor, feedback, sandbox):
    client.force_login(editor)
    rows = ",".join(str(pk) for pk in first_rows(feedback, 5))
    url = new_url(feedback, rows=rows)
    data = form_data(feedback, selection="rows", rows=rows)
    preview = client.post(url, {**data, "action": "preview"}, **HTMX).content.decode()
    token = estimate_token(preview)

    unseen = client.post(url, {**data, "action": "start"}).content.decode()
    assert "preview it, check the estimate, then start" in unseen
    changed = {**data, "batch_size": "50", "action": "start", "estimate": token}
    assert "changed since its preview" in client.post(url, changed).content.decode()
    assert not Job.objects.exists()

    started = client.post(url, {**data, "action": "start", "estimate": token})
    job = Job.objects.get()
    assert started.status_code == 302
    assert started["Location"] == reverse("jobs:detail", args=[job.pk])
    assert job.owner == editor and job.started_at is not None
    assert job.rows_total == 5 and job.selection == "rows"
    assert job.estimated_cost is not None and job.estimated_cost > 0


# --- The list and one job -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_a_users_own_jobs_and_staff_see_everyones(client, editor, staff, feedback):
    SheetGrant.objects.create(sheet=feedback, user=staff, role="edit")
    mine = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 4)))
    theirs = created(staff, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))
    JobRow.objects.filter(pk=JobRow.objects.filter(job=mine).first().pk).update(status="done")
    Job.objects.filter(pk=mine.pk).update(rows_done=1, status="running")

    client.force_login(editor)
    html = client.get(reverse("jobs:index")).content.decode()
    assert f'data-testid="job-{mine.pk}"' in html and f'data-testid="job-{theirs.pk}"' not in html
    assert '<progress value="25" max="100"' in html
    assert "1 / 0 / 0 <small>of 4</small>" in html
    assert 'hx-trigger="every 3s"' in html  # a running job: the list refreshes itself

    client.force_login(staff)
    html = client.get(reverse("jobs:index")).content.decode()
    assert f'data-testid="job-{mine.pk}"' in html and f'data-testid="job-{theirs.pk}"' in html
    assert "<th>Owner</th>" in html


@pytest.mark.django_db
def test_the_list_takes_the_same_number_of_queries_for_many_jobs(
    client, editor, feedback, django_assert_num_queries
):
    client.force_login(editor)
    created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))
    client.get(reverse("jobs:index"))  # session and user cached like any later request
    with django_assert_num_queries(4) as one:
        client.get(reverse("jobs:index"))
    for _ in range(5):
        created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))
    with django_assert_num_queries(len(one.captured_queries)):
        html = client.get(reverse("jobs:index")).content.decode()
    assert html.count('data-testid="job-') == 6


@pytest.mark.django_db
def test_a_job_page_is_for_its_owner_and_staff_and_others_find_nothing(
    client, editor, viewer, staff, feedback, django_user_model
):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 3)))
    url = reverse("jobs:detail", args=[job.pk])
    stranger = django_user_model.objects.create_user("dave", "dave@example.com", "pw")

    seen = {}
    for user in (editor, staff, viewer, stranger):
        client.force_login(user)
        response = client.get(url)
        seen[user.username] = (
            response.status_code,
            'data-testid="action-pause"' in str(response.content),
        )
    assert seen == {
        "alice": (200, True),
        "carol": (200, True),
        "bob": (404, False),  # a grant on the sheet shows its cells, not someone's job
        "dave": (404, False),
    }
    client.force_login(stranger)
    assert client.post(reverse("jobs:action", args=[job.pk, "pause"]), **HTMX).status_code == 404
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED


@pytest.mark.django_db
def test_a_job_page_lists_failures_first_with_their_reasons_and_pages_the_rest(
    client, editor, feedback
):
    rows = first_rows(feedback, 60)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    JobRow.objects.filter(job=job).update(status="done", has_output=True, output="Positive")
    JobRow.objects.filter(job=job, row_id=rows[40]).update(
        status="failed", error="The answer was blocked by the content filter."
    )
    JobRow.objects.filter(job=job, row_id=rows[50]).update(
        status="skipped", error="Changed by Pat Other at 10:02."
    )
    client.force_login(editor)
    html = client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    statuses = re.findall(r'data-testid="job-row" data-status="(\w+)"', html)
    assert statuses[:3] == ["failed", "skipped", "done"]
    assert len(statuses) == 50
    assert "blocked by the content filter" in html and "Changed by Pat Other" in html
    assert "Page 1 of 2" in html
    second = client.get(
        reverse("jobs:detail", args=[job.pk]) + "?part=rows&page=2", **HTMX
    ).content.decode()
    assert second.lstrip().startswith('<section id="job-rows"')
    assert second.count('data-testid="job-row"') == 10


@pytest.mark.django_db
def test_each_button_shows_only_when_it_applies_and_answers_with_the_new_state(
    client, editor, feedback
):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 3)))
    client.force_login(editor)

    def buttons(html: str) -> list[str]:
        return re.findall(r'data-testid="action-(\w+)"', html)

    assert buttons(client.get(reverse("jobs:detail", args=[job.pk])).content.decode()) == [
        "pause",
        "cancel",
    ]
    paused = client.post(reverse("jobs:action", args=[job.pk, "pause"]), **HTMX).content.decode()
    assert paused.lstrip().startswith('<div id="job-live"')
    assert 'data-status="paused"' in paused and "Paused by alice." in paused
    assert buttons(paused) == ["resume", "cancel"]
    again = client.post(reverse("jobs:action", args=[job.pk, "pause"]), **HTMX).content.decode()
    assert "cannot be paused" in again
    cancelled = client.post(reverse("jobs:action", args=[job.pk, "cancel"])).status_code
    assert cancelled == 302  # without htmx: back to the page, with a message
    html = client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert 'data-status="cancelled"' in html and buttons(html) == []
    assert "Cancelling: rows not yet written stay as they are." in html


@pytest.mark.django_db(transaction=True)
def test_undo_from_the_page_lists_the_cells_changed_since_as_conflicts(
    client, editor, feedback, sandbox
):
    rows = first_rows(feedback, 4)
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    assert job_run(job_id=job.pk) == Job.Status.COMPLETED
    sentiment = column(feedback, "Sentiment")
    other_user_client(sandbox).Sheets.update_rows(
        feedback.pk,
        [
            smartsheet.models.Row(
                {"id": rows[1], "cells": [{"columnId": sentiment.pk, "value": "Negative"}]}
            )
        ],
    )
    client.force_login(editor)
    html = client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert 'data-testid="action-undo"' in html

    undone = client.post(reverse("jobs:action", args=[job.pk, "undo"]), **HTMX).content.decode()

    assert "3 cell(s) restored; 1 changed since the job wrote them" in undone
    number = JobRow.objects.get(job=job, row_id=rows[1]).row_number
    conflicts = re.search(r'data-testid="undo-conflicts">(.*?)</ul>', undone, re.S).group(1)
    assert f"Row {number}: Changed by Pat Other" in conflicts
    assert 'data-testid="action-undo"' not in undone and 'data-testid="undone"' in undone


@pytest.mark.django_db
def test_a_paused_job_shows_its_reason_and_a_failed_row_count_offers_retry(
    client, editor, feedback
):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 3)))
    job_pause(user=editor, job_id=job.pk)
    JobRow.objects.filter(pk=JobRow.objects.filter(job=job).first().pk).update(
        status="failed", error="Refused."
    )
    Job.objects.filter(pk=job.pk).update(rows_failed=1)
    client.force_login(editor)
    html = client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert re.findall(r'data-testid="action-(\w+)"', html) == ["resume", "cancel", "retry"]
    assert 'data-testid="job-reason">Paused by alice.' in html


@pytest.mark.django_db(transaction=True)
def test_starting_a_job_into_a_new_column_creates_it_on_the_sheet(
    client, editor, feedback, sandbox
):
    client.force_login(editor)
    rows = ",".join(str(pk) for pk in first_rows(feedback, 3))
    url = new_url(feedback, rows=rows)
    data = form_data(
        feedback,
        template="How urgent is {{Feedback}}?",
        target="new",
        new_column_title="Urgency",
        new_column_type="PICKLIST",
        new_column_options="Low\nHigh\n",
        selection="rows",
        rows=rows,
    )
    preview = client.post(url, {**data, "action": "preview"}, **HTMX).content.decode()
    assert set(re.findall(r'class="preview-answer">([^<]*)<', preview)) <= {"Low", "High"}
    assert "Urgency" not in [c.title for c in feedback.columns.all()]  # not before Start

    client.post(url, {**data, "action": "start", "estimate": estimate_token(preview)})

    job = Job.objects.get()
    urgency = column(feedback, "Urgency")
    assert (job.target_column_id, urgency.type, urgency.options) == (
        urgency.pk,
        "PICKLIST",
        ["Low", "High"],
    )
    remote = other_user_client(sandbox).Sheets.get_columns(feedback.pk, include_all=True).data
    assert "Urgency" in [c.title for c in remote]


@pytest.mark.django_db
def test_a_job_paused_at_its_budget_resumes_with_a_higher_one_typed_next_to_resume(
    client, editor, feedback
):
    job = created(
        editor,
        spec(feedback, selection="rows", row_ids=first_rows(feedback, 3), budget=Decimal("0.01")),
    )
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.PAUSED, reason="Paused: the budget of $0.01 would be exceeded."
    )
    client.force_login(editor)
    html = client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert 'data-testid="resume-budget"' in html and 'value="0.01"' in html

    url = reverse("jobs:action", args=[job.pk, "resume"])
    refused = client.post(url, {"budget": "-3"}, **HTMX).content.decode()
    assert "A budget is an amount in USD above 0" in refused
    assert Job.objects.get(pk=job.pk).status == Job.Status.PAUSED

    resumed = client.post(url, {"budget": "2.50"}, **HTMX).content.decode()
    assert 'data-status="queued"' in resumed and "Resumed." in resumed
    assert Job.objects.get(pk=job.pk).budget == Decimal("2.50")


@pytest.mark.django_db
def test_after_a_reconnect_the_page_fetches_the_state_it_missed(client, editor, feedback):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 4)))
    client.force_login(editor)
    url = reverse("jobs:detail", args=[job.pk])
    page = client.get(url).content.decode()
    assert f'hx-get="{url}?part=live" hx-trigger="ws:reconnected from:body"' in page
    assert re.search(r'id="job-rows"[^>]*hx-trigger="job-rows, ws:reconnected from:body"', page)
    # Pushes sent while the socket was down are lost; the database has moved on.
    JobRow.objects.filter(job=job).update(status="done", has_output=True, output="Neutral")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.COMPLETED, rows_done=4)

    live = client.get(f"{url}?part=live", **HTMX).content.decode()
    rows = client.get(f"{url}?part=rows&page=1", **HTMX).content.decode()

    assert live.lstrip().startswith('<div id="job-live"')
    assert 'data-status="completed"' in live and 'data-percent="100"' in live
    assert 'data-testid="action-undo"' in live
    assert rows.count('data-status="done"') == 4 and "Neutral" in rows


@pytest.mark.django_db
def test_a_filter_left_in_the_form_applies_only_when_rows_matching_it_are_chosen(editor, feedback):
    from jobs.forms import JobForm

    typed = form_data(feedback, filter_text="Channel = Email", selection="all")
    form = JobForm(typed, sheet=feedback)
    assert form.is_valid(), form.errors
    assert (form.spec().selection, form.spec().filter_text) == ("all", "")
    form = JobForm({**typed, "selection": "filter"}, sheet=feedback)
    assert form.is_valid(), form.errors
    assert form.spec().filter_text == "Channel = Email"


@pytest.mark.django_db
def test_the_form_without_a_sheet_sends_the_user_to_choose_one(client, editor, feedback):
    client.force_login(editor)
    response = client.get(reverse("jobs:new"), follow=True)
    assert response.redirect_chain == [(reverse("sheets:index"), 302)]
    html = response.content.decode()
    assert "Choose the sheet to run AI on" in html
    assert f'href="{new_url(feedback)}" data-testid="run-ai"' in html
