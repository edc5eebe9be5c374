"""The runner's model calls: rows claimed a batch at a time, a pool of threads asking the model.

JobRunner (jobs/runner.py) mixes this in. The main thread claims rows (pending → running) and
keeps up to its limit of calls going; the shared limiter in ai/quota.py makes each call wait for
its slot, so the pool only needs to be big enough to fill the quota. Each thread hands its row's
Answer back on `results`; the main thread stores the answers that arrived together on their
JobRows in one statement (conditionally, jobs/answers.py) before any is written, then turns them
into row states, the budget and the early-failure check.
"""

from __future__ import annotations

import queue
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections
from django.db.models import F

from jobs.answers import Answer, answer_get, answers_store
from jobs.models import JobRow
from sheets.models import Row

if TYPE_CHECKING:
    from decimal import Decimal

    from ai.calls import CallContext
    from ai.schema import Column as OutputColumn
    from jobs.models import Job
    from sheets.models import Column


class ModelCalls:
    """The in-flight half of a run: which rows go to the model next, and what came back."""

    job: Job
    inputs: list[Column]
    target: Column
    output: OutputColumn
    context: CallContext
    tasks: queue.Queue
    results: queue.Queue
    in_flight: dict[int, int]  # JobRow id → row id
    backlog: list[tuple[int, Row]]  # claimed, not yet handed to a thread
    ready: list[int]  # JobRow ids answered, not yet written
    finished: list[int]  # row ids finished since the last progress message
    limit: int
    no_more_rows: bool
    throttled_until: float
    spent: Decimal
    answered_this_run: int
    answered_before: int
    early_seen: int
    early_failed: int

    if TYPE_CHECKING:

        def _stop(self, why: str, reason: str) -> None: ...

    # --- the threads' side ---------------------------------------------------------------

    def _ask(self) -> None:
        try:
            while True:
                item = self.tasks.get()
                if item is None:
                    return
                self.results.put(
                    answer_get(
                        job=self.job,
                        inputs=self.inputs,
                        target=self.target,
                        output=self.output,
                        context=self.context,
                        job_row_id=item[0],
                        row=item[1],
                    )
                )
        finally:
            connections.close_all()

    # --- the main thread's side ----------------------------------------------------------

    def _dispatch(self) -> None:
        """Keep the pool at its limit, from rows claimed a batch at a time.

        Rows are claimed (pending → running, one attempt more) up to batch_size at once into
        `backlog`, not one query round per freed slot; they go to the threads only as slots free
        up, so a pause or cancel stops new calls at once. Claimed rows never handed over go back
        to pending, their attempt undone, when the run ends (`_backlog_return`).
        """
        budget_room = self._budget_room()
        want = min(self.limit - len(self.in_flight), budget_room)
        if want <= 0:
            return
        found = len(self.backlog)
        if len(self.backlog) < want:
            found += self._claim(min(self.job.batch_size, budget_room) - len(self.backlog))
        if not found and not self.in_flight:
            self.no_more_rows = True
        if not self.backlog:
            return
        handed, self.backlog = self.backlog[:want], self.backlog[want:]
        for job_row_id, row in handed:
            self.in_flight[job_row_id] = row.pk
            self.tasks.put((job_row_id, row))

    def _claim(self, count: int) -> int:
        """Claim up to `count` pending rows into the backlog; how many were pending."""
        if count <= 0:
            return 0
        ids = list(
            JobRow.objects.filter(job=self.job, status=JobRow.Status.PENDING)
            .order_by("row_number", "pk")
            .values_list("pk", flat=True)[:count]
        )
        if not ids:
            return 0
        JobRow.objects.filter(pk__in=ids, status=JobRow.Status.PENDING).update(
            status=JobRow.Status.RUNNING, attempts=F("attempts") + 1
        )
        claimed = dict(
            JobRow.objects.filter(
                pk__in=ids, status=JobRow.Status.RUNNING, has_output=False
            ).values_list("pk", "row_id")
        )
        rows = Row.objects.in_bulk(list(claimed.values()))
        order = {pk: i for i, pk in enumerate(ids)}
        for job_row_id, row_id in sorted(claimed.items(), key=lambda item: order[item[0]]):
            row = rows.get(row_id)
            if row is None:
                JobRow.objects.filter(pk=job_row_id).update(
                    status=JobRow.Status.SKIPPED, error="The row was deleted from the sheet."
                )
                self.finished.append(row_id)
                continue
            self.backlog.append((job_row_id, row))
        return len(ids)

    def _backlog_return(self) -> None:
        """Claimed rows never sent go back to pending, as if never claimed."""
        ids = [job_row_id for job_row_id, _ in self.backlog]
        self.backlog = []
        if ids:
            JobRow.objects.filter(
                pk__in=ids, status=JobRow.Status.RUNNING, has_output=False
            ).update(status=JobRow.Status.PENDING, attempts=F("attempts") - 1)

    def _budget_room(self) -> int:
        budget = self.job.budget
        if budget is None:
            return 1 << 30
        answered = self.answered_before + self.answered_this_run
        if self.spent and answered:
            per_row = self.spent / answered
        elif self.job.estimated_cost and self.job.rows_total:
            per_row = self.job.estimated_cost / self.job.rows_total
        else:
            return 1 << 30
        room = int((budget - self.spent) / per_row) - len(self.in_flight) if per_row else 1 << 30
        if room <= 0 and not self.in_flight:
            self._stop(
                "budget",
                f"Paused at the budget of ${budget}: ${self.spent:.4f} spent. Raise the budget "
                "and resume to continue.",
            )
        return room

    def _store(self, answers: list[Answer]) -> None:
        """Store the answers that came back, in one statement, before any goes to the writer."""
        answers_store(answers)

    def _answered(self, answer: Answer) -> None:
        self.in_flight.pop(answer.job_row_id, None)
        self.spent += answer.cost
        if answer.kind == "ok":
            self.ready.append(answer.job_row_id)
            self.answered_this_run += 1
            self._early(failed=False, message="")
        elif answer.kind == "item":
            self.finished.append(answer.row_id)
            self.answered_this_run += 1
            self._early(failed=True, message=answer.message)
        elif answer.kind == "retry":
            self.throttled_until = time.monotonic() + (answer.retry_after or 1.0)
            gave_up = JobRow.objects.filter(
                pk=answer.job_row_id,
                status=JobRow.Status.RUNNING,
                attempts__gte=settings.JOBS_ROW_MAX_ATTEMPTS,
            ).update(
                status=JobRow.Status.FAILED,
                error=f"{answer.message} (gave up after {settings.JOBS_ROW_MAX_ATTEMPTS} tries; "
                "retry failed rows later)",
            )
            if gave_up:
                self.finished.append(answer.row_id)
            else:
                JobRow.objects.filter(
                    pk=answer.job_row_id, status=JobRow.Status.RUNNING, has_output=False
                ).update(status=JobRow.Status.PENDING)
        elif answer.kind == "run":
            JobRow.objects.filter(
                pk=answer.job_row_id, status=JobRow.Status.RUNNING, has_output=False
            ).update(status=JobRow.Status.PENDING)
            self._stop("failed", answer.message)

    def _early(self, *, failed: bool, message: str) -> None:
        window = settings.JOBS_EARLY_ROWS
        if self.early_seen >= window:
            return
        self.early_seen += 1
        self.early_failed += int(failed)
        if self.early_failed > window * settings.JOBS_EARLY_FAILURE_RATIO:
            self._stop(
                "failed",
                f"Stopped: {self.early_failed} of the first {self.early_seen} rows failed. The "
                f"last reason: {message} Check the prompt and the target column, then retry "
                "the failed rows.",
            )
