"""`manage.py run_job --sheet "Customer Feedback" --template "…{{Feedback}}…" --target Sentiment`

Runs an AI job in this process with a progress bar (for scripts), or with --queue hands it to
the Celery workers and follows it. The job belongs to --user (default: the first superuser).
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from jobs.models import Job
from jobs.runner import job_run
from jobs.services import JobInvalid, JobSpec, job_create, job_estimate, job_start
from sheets.models import Column, Sheet


class Command(BaseCommand):
    help = "Fill a column of a sheet with an AI prompt, row by row."

    def add_arguments(self, parser):
        parser.add_argument("--sheet", required=True, help="Sheet id or name.")
        parser.add_argument("--template", required=True, help="Prompt with {{Column}} references.")
        parser.add_argument(
            "--target",
            required=True,
            help="Column title to fill, or new:Title[:TYPE[:Option|Option…]] to create one.",
        )
        parser.add_argument(
            "--rows",
            default="all",
            help="all | empty | ids:1,2,3 | a filter such as 'Channel = Email'.",
        )
        parser.add_argument("--user", help="Username the job runs as (default: a superuser).")
        parser.add_argument("--priority", default="normal", choices=Job.Priority.values)
        parser.add_argument("--deployment", default="")
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--budget", help="Stop (paused) before spending more USD than this.")
        parser.add_argument("--queue", action="store_true", help="Run on the Celery workers.")
        parser.add_argument("--estimate", action="store_true", help="Only print the estimate.")

    def handle(self, *args, **options):
        user = self._user(options["user"])
        sheet = self._sheet(options["sheet"])
        spec = self._spec(sheet, options)
        try:
            estimate = job_estimate(user=user, spec=spec)
        except JobInvalid as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{estimate.rows} rows, ~{estimate.prompt_tokens:,} prompt + "
            f"~{estimate.completion_tokens:,} completion tokens, ~${estimate.cost:.4f}, "
            f"~{estimate.seconds:.0f} s at the deployment's quota."
        )
        if options["estimate"]:
            return
        job = job_create(user=user, spec=spec, estimate=estimate)
        bar = tqdm(total=job.rows_total, unit="row", disable=None)

        def progress(current: Job) -> None:
            bar.n = current.rows_finished
            bar.set_postfix(failed=current.rows_failed, skipped=current.rows_skipped)
            bar.refresh()

        if options["queue"]:
            job_start(user=user, job_id=job.pk)
            while True:
                job.refresh_from_db()
                progress(job)
                if job.status not in Job.ACTIVE:
                    break
                time.sleep(1)
        else:
            job_start_inline(job)
            job_run(job_id=job.pk, on_progress=progress, sliced=False)
            job.refresh_from_db()
            progress(job)
        bar.close()
        self.stdout.write(
            f"Job {job.pk} {job.get_status_display()}: {job.rows_done} written, "
            f"{job.rows_failed} failed, {job.rows_skipped} skipped, ${job.cost:.4f}."
            + (f" {job.reason}" if job.reason else "")
        )
        if job.status == Job.Status.FAILED:
            raise CommandError(job.reason or "The job failed.")

    def _user(self, username: str | None):
        users = get_user_model().objects
        user = (
            users.filter(username=username).first()
            if username
            else users.filter(is_superuser=True, is_active=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError(
                f"No user {username!r}." if username else "No superuser: pass --user <name>."
            )
        return user

    def _sheet(self, ref: str) -> Sheet:
        sheet = (
            Sheet.objects.filter(pk=int(ref)).first()
            if ref.isdigit()
            else Sheet.objects.filter(name=ref).first()
        )
        if sheet is None:
            raise CommandError(f"No mirrored sheet {ref!r}; run sync_sheets first.")
        return sheet

    def _spec(self, sheet: Sheet, options) -> JobSpec:
        fields: dict = {}
        target = options["target"]
        if target.startswith("new:"):
            title, kind, choices = [*target[4:].split(":", 2), "", ""][:3]
            fields.update(
                new_column_title=title,
                new_column_type=kind or "TEXT_NUMBER",
                new_column_options=tuple(o for o in choices.split("|") if o),
            )
        else:
            column = Column.objects.filter(sheet=sheet, title=target).first()
            if column is None:
                raise CommandError(f"The sheet has no column {target!r}.")
            fields["target_column_id"] = column.pk
        rows = options["rows"]
        if rows in ("all", "empty"):
            fields["selection"] = rows
        elif rows.startswith("ids:"):
            fields.update(
                selection="rows", row_ids=tuple(int(i) for i in rows[4:].split(",") if i.strip())
            )
        else:
            fields.update(selection="filter", filter_text=rows)
        budget = None
        if options["budget"]:
            try:
                budget = Decimal(options["budget"])
            except InvalidOperation as exc:
                raise CommandError("--budget is an amount in USD, like 0.50.") from exc
        return JobSpec(
            sheet_id=sheet.pk,
            template=options["template"],
            deployment=options["deployment"],
            batch_size=options["batch_size"],
            priority=options["priority"],
            budget=budget,
            **fields,
        )


def job_start_inline(job: Job) -> None:
    """Mark the job started without handing it to Celery (this process runs it)."""
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now())
