"""A job's socket: who may open it, and progress messages becoming the page's figures and
buttons, swapped out of band."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from jobs.events import job_progress_send
from jobs.models import Job
from jobs.services import job_pause
from tests.conftest import SOCKET_CONNECT_TIMEOUT
from tests.jobs.conftest import created, first_rows, spec
from tests.sheets.test_grid_consumer import HOST, ORIGIN, headers_for, next_matching

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(headers, job_id: int) -> tuple[bool, int | None]:
    async def run():
        socket = WebsocketCommunicator(application, f"/ws/jobs/{job_id}/", headers=headers)
        connected, code = await socket.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        await socket.disconnect()
        return connected, code

    return async_to_sync(run)()


def test_owner_staff_and_people_with_a_grant_may_listen_and_no_one_else(
    client, editor, viewer, staff, feedback, django_user_model
):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))
    stranger = django_user_model.objects.create_user("dave", "dave@example.com", "pw")
    assert _connect(headers_for(client, editor), job.pk)[0]
    assert _connect(headers_for(client, staff), job.pk)[0]
    assert _connect(headers_for(client, viewer), job.pk)[0]
    assert _connect(headers_for(client, stranger), job.pk) == (False, 4403)
    assert _connect(headers_for(client, editor), job.pk + 1000) == (False, 4403)
    assert _connect([ORIGIN, HOST], job.pk) == (False, 4401)  # not logged in


def _first_push(headers, job: Job, send) -> str:
    async def run():
        socket = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=headers)
        connected, _ = await socket.connect(timeout=SOCKET_CONNECT_TIMEOUT)
        assert connected
        assert 'id="ws-status"' in await socket.receive_from()
        await sync_to_async(send)()
        message = await next_matching(socket, 'id="job-stats"')
        await socket.disconnect()
        return message

    return async_to_sync(run)()


def test_a_progress_message_arrives_as_the_figures_and_the_buttons_that_apply_now(
    client, editor, viewer, feedback
):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 4)))
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, rows_done=3, prompt_tokens=1234, cost="0.0021"
    )
    job.refresh_from_db()

    def send():
        job_progress_send(job=job, rows_per_second=12.5, finished=[1, 2, 3])

    message = _first_push(headers_for(client, editor), job, send)

    assert '<article id="job-stats"' in message and 'hx-swap-oob="true"' in message
    assert 'data-percent="75"' in message and 'data-status="running"' in message
    assert "12.5" in message and "1,234" in message and "$0.0021" in message
    assert 'data-rows-changed="1"' in message  # finished rows: the page refreshes its table
    assert '<div id="job-actions"' in message
    assert 'data-testid="action-pause"' in message and 'data-testid="action-cancel"' in message

    # Someone with only a view grant watches the same figures, without buttons.
    watched = _first_push(headers_for(client, viewer), job, send)
    assert 'data-percent="75"' in watched and 'data-testid="action-' not in watched


def test_buttons_follow_the_jobs_status_in_the_database(client, editor, feedback):
    job = created(editor, spec(feedback, selection="rows", row_ids=first_rows(feedback, 2)))

    message = _first_push(
        headers_for(client, editor), job, lambda: job_pause(user=editor, job_id=job.pk)
    )

    assert 'data-status="paused"' in message and "Paused by alice." in message
    assert 'data-testid="action-resume"' in message
    assert 'data-testid="action-pause"' not in message
    assert 'data-rows-changed="1"' not in message
