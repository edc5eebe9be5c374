"""A running job in the grid: its chip beside the people, its target cells marked queued /
working / failed until written, on the page (from the database) and live (the sheet's socket);
and the grid's Run AI button."""

from __future__ import annotations

import html
import json
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.events import job_progress_send
from jobs.models import Job, JobRow
from jobs.services import job_start
from sheets.events import sheet_changed_send
from tests.conftest import run_in_thread
from tests.jobs.conftest import column, created, first_rows, spec
from tests.sheets.test_grid_consumer import headers_for, next_matching, opened

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = "The model refused: content filter."


def _running_job(editor, feedback, rows) -> Job:
    """A started job over `rows`: the first working, the second failed, the third written, the
    rest waiting."""
    job = created(editor, spec(feedback, selection="rows", row_ids=rows))
    job_start(user=editor, job_id=job.pk)
    JobRow.objects.filter(job=job, row_id=rows[0]).update(status=JobRow.Status.RUNNING)
    JobRow.objects.filter(job=job, row_id=rows[1]).update(status="failed", error=REFUSED)
    JobRow.objects.filter(job=job, row_id=rows[2]).update(status=JobRow.Status.DONE)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, rows_done=1, rows_failed=1)
    job.refresh_from_db()
    return job


def _cell(page: str, row_id: int, column_id: int) -> str:
    found = re.search(rf'<td id="c-{row_id}-{column_id}"[^>]*>', page)
    assert found, f"no cell c-{row_id}-{column_id}"
    return found.group(0)


def test_the_grid_shows_a_running_job_like_a_collaborator_and_marks_its_target_cells(
    client, editor, feedback
):
    rows = first_rows(feedback, 5)
    job = _running_job(editor, feedback, rows)
    target = column(feedback, "Sentiment").pk
    other = column(feedback, "Feedback").pk
    client.force_login(editor)

    page = client.get(reverse("sheets:grid", args=[feedback.pk])).content.decode()

    chip = re.search(r'<a class="worker" href="([^"]+)" data-job="(\d+)"[^>]*>(.*?)</a>', page)
    assert chip, "no job chip in the presence bar"
    assert (chip.group(1), int(chip.group(2))) == (f"/jobs/{job.pk}/", job.pk)
    assert "Fill Sentiment" in chip.group(3) and "40%" in chip.group(3)  # 2 of 5 rows finished
    working, failed = _cell(page, rows[0], target), _cell(page, rows[1], target)
    assert "job-working" in working and 'title="working"' in working
    assert "job-failed" in failed and f'title="failed: {html.escape(REFUSED)}"' in failed
    assert "job-" not in _cell(page, rows[2], target)  # written: nothing left to show
    for row in rows[3:]:
        assert "job-queued" in _cell(page, row, target)
        assert 'title="queued"' in _cell(page, row, target)
    assert "job-" not in _cell(page, rows[3], other)  # only the target column
    assert "job-" not in _cell(page, first_rows(feedback, 6)[5], target)  # not in the job

    # Done: the chip and the marks go.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.COMPLETED_WITH_ERRORS)
    page = client.get(reverse("sheets:grid", args=[feedback.pk])).content.decode()
    assert 'class="worker"' not in page and "job-queued" not in page and "job-failed" not in page


def test_run_ai_is_offered_to_editors_and_never_to_viewers(client, editor, viewer, feedback):
    _running_job(editor, feedback, first_rows(feedback, 4))
    client.force_login(editor)
    page = client.get(reverse("sheets:grid", args=[feedback.pk])).content.decode()
    button = re.search(r'<a href="([^"]+)"[^>]*data-testid="run-ai"', page)
    assert button and button.group(1) == f"/jobs/new?sheet={feedback.pk}"

    client.force_login(viewer)
    page = client.get(reverse("sheets:grid", args=[feedback.pk])).content.decode()
    assert 'data-testid="run-ai"' not in page and "/jobs/new" not in page
    assert 'data-testid="job-chip"' in page  # a viewer still sees the job at work


def test_jobs_and_marked_cells_cost_one_query_however_many(client, editor, feedback):
    client.force_login(editor)
    url = reverse("sheets:grid", args=[feedback.pk])

    def queries(path: str, **headers) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path, **headers).status_code == 200
        return len(captured)

    # The page and the next rows without any job: the grid's own queries and one for jobs.
    page, more = queries(url), queries(url + "?offset=100", HTTP_HX_REQUEST="true")
    _running_job(editor, feedback, first_rows(feedback, 50))
    second = created(editor, spec(feedback, selection="all", template="{{Feedback}}"))
    job_start(user=editor, job_id=second.pk)
    assert queries(url) == page <= 11
    assert queries(url + "?offset=100", HTTP_HX_REQUEST="true") == more <= 10


def test_progress_reaches_open_grids_as_the_chip_and_the_cells_marks(client, editor, feedback):
    rows = first_rows(feedback, 5)
    job = _running_job(editor, feedback, rows)
    target = column(feedback, "Sentiment").pk
    headers = headers_for(client, editor)

    def progress():
        job_progress_send(job=job, working=[rows[3]], finished=[rows[1], rows[2]])

    def done():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.COMPLETED, rows_done=5)
        job.refresh_from_db()
        job_progress_send(job=job, finished=[rows[3], rows[4]])

    async def run():
        seen = {}
        socket = await opened(headers, feedback.pk)
        await sync_to_async(progress)()
        seen["chip"] = await next_matching(socket, 'id="grid-workers"')
        seen["marks"] = await next_matching(socket, 'id="grid-marks"')
        # A row pushed by the mirror meanwhile keeps its mark (from the database).
        await sync_to_async(sheet_changed_send)(
            sheet_id=feedback.pk, version=None, changed=[rows[4]], added=[], deleted=[]
        )
        seen["row"] = await next_matching(socket, f'id="r-{rows[4]}"')
        await sync_to_async(done)()
        seen["ended"] = await next_matching(socket, 'id="grid-workers"')
        seen["unmarked"] = await next_matching(socket, 'id="grid-marks"')
        await socket.disconnect()
        return seen

    seen = run_in_thread(async_to_sync(run))
    assert 'hx-swap-oob="true"' in seen["chip"]
    assert f'href="/jobs/{job.pk}/" data-job="{job.pk}"' in seen["chip"]
    assert "Fill Sentiment" in seen["chip"] and ">40%<" in seen["chip"]
    marks = re.search(r'data-marks="([^"]*)"', seen["marks"]).group(1)
    assert json.loads(html.unescape(marks)) == {
        f"c-{rows[3]}-{target}": ["working", "working"],
        f"c-{rows[1]}-{target}": ["failed", f"failed: {REFUSED}"],
        f"c-{rows[2]}-{target}": None,
    }
    assert f'data-job="{job.pk}" data-active="true"' in seen["marks"]
    assert "job-queued" in _cell(seen["row"], rows[4], target)
    assert 'class="worker"' not in seen["ended"]
    assert f'data-job="{job.pk}" data-active="false"' in seen["unmarked"]
