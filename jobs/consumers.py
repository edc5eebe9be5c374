"""A job's page socket: each progress message (jobs/events.py) becomes the page's figures and
buttons, swapped out of band by id; a message that finished rows marks itself so the page
refreshes its rows table (static/js/jobs.js).

Who may listen: the job's owner, staff, and anyone with a grant on its sheet (they watch the
sheet change anyway); only those who may steer the job get its buttons.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from core.consumers import AuthenticatedConsumer
from jobs import selectors
from jobs.events import job_group
from jobs.models import Job
from sheets.selectors import sheet_role_for


@database_sync_to_async
def _access(user, job_id: int) -> tuple[bool, bool]:
    """(may see, may steer) the job."""
    job = Job.objects.select_related("sheet").filter(pk=job_id).first()
    if job is None:
        return False, False
    sees = selectors.job_can_see(user=user, job=job) or sheet_role_for(user=user, sheet=job.sheet)
    return bool(sees), selectors.job_can_steer(user=user, job=job)


def progress_html(*, job_id: int, steers: bool, event: dict) -> str:
    """The figures from the message itself (rows/s and ETA live only there), the buttons from
    the job as the database has it now."""
    job = Job.objects.select_related("sheet").filter(pk=job_id).first()
    if job is None:  # deleted while the page was open
        return ""
    context = {
        "job": job,
        "state": event,
        "actions": selectors.job_actions(job) if steers else [],
        "oob": True,
        "rows_changed": bool(event.get("finished")) or event.get("status") in Job.FINISHED,
    }
    return render_to_string("jobs/detail.html#stats", context) + render_to_string(
        "jobs/detail.html#actions", context
    )


class JobConsumer(AuthenticatedConsumer):
    async def get_groups(self) -> list[str] | None:
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        sees, self.steers = await _access(self.scope["user"], self.job_id)
        return [job_group(self.job_id)] if sees else None

    async def job_progress(self, event: dict) -> None:
        html = await database_sync_to_async(progress_html)(
            job_id=self.job_id, steers=self.steers, event=event
        )
        if html:
            await self.send(text_data=html)
