"""The runner: one job's rows through the model at the quota's pace, written back in bulk.

Inside one Celery task (or `manage.py run_job`):
- the main thread claims the job with a fresh run token (`UPDATE … WHERE status = 'queued'`),
  then claims rows (pending → running) a batch at a time and keeps up to JOBS_MAX_IN_FLIGHT
  model calls going on a pool of threads; the shared limiter in ai/quota.py makes each call
  wait for its slot, so the pool only needs to be big enough to fill the quota (jobs/pool.py);
- the main thread stores the answers that came back on their JobRows (conditionally, one
  statement for all that arrived together) before any of them is written;
- a writer thread flushes answered rows (jobs/writer.py) once JOBS_FLUSH_ROWS wait, or when
  the oldest has waited JOBS_FLUSH_SECONDS, while the calls go on (jobs/flushes.py);
- every JOBS_HEARTBEAT_SECONDS the main thread beats, re-reads the status (a pause or cancel takes
  effect within a second: no new calls, the answered rows are written on pause), refreshes the
  counts and publishes progress. A run whose token is gone (the sweep re-queued the job) stops.
- after JOBS_SLICE_SECONDS the run re-queues itself, so a queued job of higher priority gets a
  worker, and no run outlives the task's time limit.
Resuming is the same path: answered rows are written (compared first if a write may have
landed), unanswered ones asked; no row is asked twice once its answer was stored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from ai.calls import CallContext
from ai.models import UsageRecord
from ai.schema import Column as OutputColumn
from jobs.events import job_progress_send
from jobs.flushes import Flushes
from jobs.models import Job, JobRow
from jobs.pool import ModelCalls
from jobs.scheduling import priority_announce, priority_leave
from jobs.services import job_counts_refresh, job_enqueue, job_rows_close
from sheets.models import Column

logger = logging.getLogger(__name__)

# How often the status is re-read between heartbeats, so a cancel or pause stops new model
# calls within this long (a query on the job's primary key).
CONTROL_SECONDS = 0.05


def job_run(
    *, job_id: int, on_progress: Callable[[Job], None] | None = None, sliced: bool = True
) -> str:
    """Run a queued job until it is done, paused, cancelled, failed or its slice ends.

    `sliced=False` (run_job, benchmarks) runs to the end in this process instead of handing the
    rest back to the queue after JOBS_SLICE_SECONDS.
    """
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING,
        run_token=token,
        heartbeat_at=now,
        runs=F("runs") + 1,
        started_at=Coalesce(F("started_at"), now),
    )
    if not claimed:
        return "not queued"
    job = Job.objects.select_related("sheet").get(pk=job_id)
    return JobRunner(job=job, token=token, on_progress=on_progress, sliced=sliced).run()


class JobRunner(ModelCalls, Flushes):
    """One run of one job: setup, the main loop, control and progress, the end."""

    def __init__(
        self,
        *,
        job: Job,
        token: str,
        on_progress: Callable[[Job], None] | None = None,
        sliced: bool = True,
    ) -> None:
        self.job = job
        self.sliced = sliced
        self.token = token
        self.on_progress = on_progress
        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        # The threads' usage records, saved together by the main thread (_usage_save).
        self.usage: list[UsageRecord] = []
        self.usage_lock = threading.Lock()
        self.usage_closed = False  # after the run: a straggler's record is saved at once
        self.flushes: queue.Queue = queue.Queue()
        self.in_flight: dict[int, int] = {}  # JobRow id → row id
        self.backlog: list = []  # (JobRow id, Row) claimed, not yet handed to a thread
        self.ready: list[int] = []  # JobRow ids answered, not yet written
        self.finished: list[int] = []  # row ids finished since the last progress message
        self.flushing = False
        self.stopping = ""  # why the run stops: paused, cancelled, failed, lost, slice, budget
        self.reason = ""
        self.no_more_rows = False
        self.throttled_until = 0.0
        self.spent = job.cost
        self.answered_this_run = 0
        self.finished_at_start = 0
        self.started = time.monotonic()
        self.flush_failures = 0
        self.flush_not_before = 0.0  # monotonic; after a failed flush
        self.requeue_delay = 0.0  # seconds before the next run, when Smartsheet is away
        self.answered_before = 0

    # --- setup ----------------------------------------------------------------------------

    def _load(self) -> bool:
        job = self.job
        self.target = Column.objects.filter(pk=job.target_column_id, sheet=job.sheet).first()
        if self.target is None:
            self._stop("failed", f"The column “{job.target_title}” was deleted from the sheet.")
            return False
        by_id = Column.objects.in_bulk(job.input_column_ids)
        missing = [pk for pk in job.input_column_ids if pk not in by_id]
        if missing:
            self._stop(
                "failed",
                "A column the prompt reads was deleted from the sheet; create a new job.",
            )
            return False
        self.inputs = [by_id[pk] for pk in job.input_column_ids]
        spec = dict(job.output_spec)
        spec["options"] = tuple(spec.get("options") or ())
        self.output = OutputColumn(**spec)
        self.context = CallContext(
            purpose="job", user_id=job.owner_id, job_id=job.pk, record_to=self._usage_record
        )
        # A previous run died while these were with the model: their answers were never stored.
        JobRow.objects.filter(job=job, status=JobRow.Status.RUNNING, has_output=False).update(
            status=JobRow.Status.PENDING
        )
        self.ready = list(
            JobRow.objects.filter(
                job=job, status=JobRow.Status.RUNNING, has_output=True
            ).values_list("pk", flat=True)
        )
        job_counts_refresh(job=job)
        self.finished_at_start = job.rows_finished
        self.early_seen = (
            JobRow.objects.filter(job=job, attempts__gt=0)
            .exclude(status__in=(JobRow.Status.PENDING, JobRow.Status.SKIPPED))
            .count()
        )
        self.early_failed = job.rows_failed
        self.answered_before = (
            JobRow.objects.filter(job=job, attempts__gt=0)
            .exclude(status=JobRow.Status.PENDING)
            .count()
        )
        return True

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> str:
        if not self._load():
            return self._finish()
        threads = [
            threading.Thread(target=self._ask, name=f"job-{self.job.pk}-ask-{i}", daemon=True)
            for i in range(settings.JOBS_MAX_IN_FLIGHT)
        ]
        writer = threading.Thread(target=self._write, name=f"job-{self.job.pk}-write", daemon=True)
        for thread in [*threads, writer]:
            thread.start()
        try:
            self._loop()
        finally:
            for _ in threads:
                self.tasks.put(None)
            self.flushes.put(None)
            for thread in [*threads, writer]:
                thread.join(timeout=settings.AZURE_OPENAI_TIMEOUT + 5)
        return self._finish()

    def _loop(self) -> None:
        deadline = self.started + (settings.JOBS_SLICE_SECONDS if self.sliced else float("inf"))
        last_beat = last_control = 0.0
        last_flush = time.monotonic()
        self.limit = settings.JOBS_MAX_IN_FLIGHT
        while True:
            now = time.monotonic()
            if now - last_beat >= settings.JOBS_HEARTBEAT_SECONDS:
                self._beat()
                last_beat = last_control = now
            elif now - last_control >= CONTROL_SECONDS and not self.stopping:
                self._control()
                last_control = now
            if not self.stopping and now > deadline:
                self._stop("slice", "")
            if not self.stopping and not self.no_more_rows and now >= self.throttled_until:
                self._dispatch()
            self._collect(timeout=0.1)
            self._usage_save()
            idle = not self.in_flight and (self.stopping or self.no_more_rows)
            writes_allowed = self.stopping not in ("cancelled", "lost")
            count = self._flush_count(idle, time.monotonic() - last_flush)
            if (
                count
                and not self.flushing
                and writes_allowed
                and time.monotonic() >= self.flush_not_before
            ):
                ids, self.ready = self.ready[:count], self.ready[count:]
                self.flushing = True
                last_flush = time.monotonic()
                self.flushes.put(ids)
            if idle and not self.flushing and (not self.ready or not writes_allowed):
                return
            if idle and not self.flushing and self.flush_failures >= 3:
                self._stop("slice", "")  # Smartsheet away: the next run writes them
                self.requeue_delay = settings.JOBS_REQUEUE_DELAY
                return

    def _collect(self, timeout: float) -> None:
        try:
            item = self.results.get(timeout=timeout)
        except queue.Empty:
            return
        items = [item]
        while True:
            try:
                items.append(self.results.get_nowait())
            except queue.Empty:
                break
        answers = [item for item in items if not isinstance(item, tuple)]
        if answers:
            self._store(answers)
        for item in items:
            if isinstance(item, tuple):
                self._flushed(*item[1:])
            else:
                self._answered(item)

    def _usage_record(self, record: UsageRecord) -> None:
        """On the threads: a call's usage record, saved with the others by the main thread."""
        with self.usage_lock:
            if not self.usage_closed:
                self.usage.append(record)
                return
        record.save()

    def _usage_save(self, *, close: bool = False) -> None:
        """The usage records of the calls that ended since the last look, in one INSERT."""
        with self.usage_lock:
            records, self.usage = self.usage, []
            self.usage_closed = self.usage_closed or close
        if records:
            UsageRecord.objects.bulk_create(records, batch_size=500)

    # --- heartbeat, control, progress -------------------------------------------------------

    def _control(self) -> str | None:
        """Re-read the status (one small query): a pause or cancel stops new calls at once."""
        status, token = Job.objects.filter(pk=self.job.pk).values_list("status", "run_token")[0]
        if token != self.token:
            self._stop("lost", "")
        elif status == Job.Status.PAUSED:
            self._stop("paused", "")
        elif status == Job.Status.CANCELLING:
            self._stop("cancelled", "")
        elif status != Job.Status.RUNNING:
            self._stop("lost", "")
        return status

    def _beat(self) -> None:
        job = self.job
        Job.objects.filter(pk=job.pk, run_token=self.token).update(heartbeat_at=timezone.now())
        status = self._control()
        self._yield_to_higher_priority()
        job_counts_refresh(job=job)
        job.status = status or job.status
        self._progress()

    def _progress(self) -> None:
        elapsed = time.monotonic() - self.started
        rate = (self.job.rows_finished - self.finished_at_start) / elapsed if elapsed > 1 else 0
        job_progress_send(
            job=self.job,
            rows_per_second=rate,
            working=list(self.in_flight.values()),
            finished=self.finished,
        )
        self.finished = []
        if self.on_progress is not None:
            self.on_progress(self.job)

    def _yield_to_higher_priority(self) -> None:
        """Jobs share a deployment's quota; one of lower priority keeps few calls going while a
        higher one runs, so the higher one's rows come first."""
        full = settings.JOBS_MAX_IN_FLIGHT
        higher = priority_announce(job=self.job, ttl=3 * settings.JOBS_HEARTBEAT_SECONDS)
        self.limit = max(1, full // settings.JOBS_YIELD_DIVISOR) if higher else full

    def _stop(self, why: str, reason: str) -> None:
        if not self.stopping or (why == "failed" and self.stopping == "slice"):
            self.stopping, self.reason = why, reason

    # --- the end ------------------------------------------------------------------------------

    def _finish(self) -> str:
        job = self.job
        self._usage_save(close=True)  # the threads are done: the last calls' records
        priority_leave(job=job)
        why = self.stopping
        if why != "lost":
            self._backlog_return()
            JobRow.objects.filter(job=job, status=JobRow.Status.RUNNING, has_output=False).update(
                status=JobRow.Status.PENDING
            )
        job_counts_refresh(job=job)
        running = (Job.Status.RUNNING,)
        if why == "" and self.no_more_rows:
            done = Job.Status.COMPLETED_WITH_ERRORS if job.rows_failed else Job.Status.COMPLETED
            if not job.transition(to=done, frm=running, reason=""):
                why = self._late_control()
        elif why == "slice":
            if job.transition(to=Job.Status.QUEUED, frm=running):
                job_enqueue(job=job, countdown=self.requeue_delay)
            else:
                why = self._late_control()
        elif why == "budget":
            job.transition(to=Job.Status.PAUSED, frm=running, reason=self.reason)
        elif why == "failed":
            job.transition(
                to=Job.Status.FAILED, frm=(*running, Job.Status.QUEUED), reason=self.reason
            )
        if why == "cancelled":
            job.transition(to=Job.Status.CANCELLED, frm=Job.Status.CANCELLING)
            job_rows_close(job=job, reason="The job was cancelled before this row was written.")
        job.refresh_from_db()
        self._progress()
        logger.info(
            "job %s: run ended (%s): %d done, %d failed, %d skipped of %d",
            job.pk,
            job.status,
            job.rows_done,
            job.rows_failed,
            job.rows_skipped,
            job.rows_total,
        )
        return job.status

    def _late_control(self) -> str:
        """A pause or cancel that arrived after the last beat."""
        status = Job.objects.filter(pk=self.job.pk).values_list("status", flat=True).first()
        return "cancelled" if status == Job.Status.CANCELLING else "paused"
