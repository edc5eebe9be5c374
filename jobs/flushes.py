"""The runner's writes: answered rows flushed to Smartsheet in bulk by one writer thread.

JobRunner (jobs/runner.py) mixes this in. The main thread decides when a flush is due (once
JOBS_FLUSH_ROWS wait, or the oldest answer has waited JOBS_FLUSH_SECONDS, or the run winds down)
and hands the JobRow ids to the writer thread, which writes them through jobs/writer.py while
the calls go on; one flush at a time. A failed flush puts its rows back at the front and waits
(Smartsheet's retry-after, else JOBS_FLUSH_SECONDS) before the next.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections

from jobs.writer import FlushResult, job_rows_flush_safely
from sheets.client import MAX_ROWS_PER_REQUEST

if TYPE_CHECKING:
    from jobs.models import Job
    from sheets.models import Column

logger = logging.getLogger("jobs.runner")


class Flushes:
    """The write half of a run: when to flush, the writer thread, and what a flush returned."""

    job: Job
    target: Column
    flushes: queue.Queue
    results: queue.Queue
    ready: list[int]
    finished: list[int]
    flushing: bool
    flush_failures: int
    flush_not_before: float

    def _write(self) -> None:
        try:
            while True:
                ids = self.flushes.get()
                if ids is None:
                    return
                outcome = job_rows_flush_safely(job=self.job, target=self.target, ids=ids)
                self.results.put(("flushed", ids, outcome))
        finally:
            connections.close_all()

    def _flush_count(self, idle: bool, since_flush: float) -> int:
        """How many answered rows to write now (0: keep collecting).

        A flush costs one read plus one write per 500 rows: at JOBS_FLUSH_ROWS (1,000) a flush
        that is 3 calls per 1,000 rows. Smaller flushes happen only when the run winds down or
        an answer has waited JOBS_FLUSH_SECONDS.
        """
        waiting = len(self.ready)
        if waiting and (idle or since_flush >= settings.JOBS_FLUSH_SECONDS):
            return waiting
        if waiting >= settings.JOBS_FLUSH_ROWS:
            # Whole requests: 1,003 waiting go out as 1,000, not as 500 + 500 + 3.
            return max(MAX_ROWS_PER_REQUEST, waiting // MAX_ROWS_PER_REQUEST * MAX_ROWS_PER_REQUEST)
        return 0

    def _flushed(self, ids: list[int], outcome: FlushResult | Exception) -> None:
        self.flushing = False
        if isinstance(outcome, Exception):
            self.flush_failures += 1
            self.ready = ids + self.ready
            wait = getattr(outcome, "retry_after", None) or settings.JOBS_FLUSH_SECONDS
            self.flush_not_before = time.monotonic() + wait
            logger.info("job %s: %d rows not written yet (%s)", self.job.pk, len(ids), outcome)
            return
        self.flush_failures = 0
        self.finished.extend([*outcome.written, *outcome.skipped, *outcome.failed])
