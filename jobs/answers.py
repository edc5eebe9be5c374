"""One row through the model, its answer stored on its JobRow before anything is written.

Runs on the runner's threads; the result tells the runner what became of the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ai.calls import CallContext
from ai.errors import AIError, ItemError, RetryableError
from ai.schema import Column as OutputColumn
from jobs.models import Job, JobRow
from jobs.prompts import row_answer
from sheets.models import Column, Row


@dataclass
class Answer:
    """What became of one row."""

    job_row_id: int
    row_id: int
    kind: str  # "ok" | "item" | "retry" | "run" | "gone"
    message: str = ""
    retry_after: float | None = None
    cost: Decimal = Decimal(0)


def answer_store(
    *,
    job: Job,
    inputs: Sequence[Column],
    target: Column,
    output: OutputColumn,
    context: CallContext,
    job_row_id: int,
    row: Row,
) -> Answer:
    """Ask the model for `row` and store its answer (only while the row is still running)."""
    try:
        value, result = row_answer(
            template=job.template,
            inputs=inputs,
            target=target,
            output=output,
            row=row,
            deployment=job.deployment,
            max_tokens=job.max_tokens,
            context=context,
        )
    except ItemError as exc:
        JobRow.objects.filter(pk=job_row_id, status=JobRow.Status.RUNNING).update(
            status=JobRow.Status.FAILED, error=exc.message
        )
        return Answer(job_row_id, row.pk, "item", exc.message)
    except RetryableError as exc:
        return Answer(job_row_id, row.pk, "retry", exc.message, exc.retry_after)
    except AIError as exc:  # RunError: nothing will work until a person fixes the configuration
        return Answer(job_row_id, row.pk, "run", exc.message)
    stored = JobRow.objects.filter(
        pk=job_row_id, status=JobRow.Status.RUNNING, has_output=False
    ).update(
        output=value,
        has_output=True,
        error="",
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost=result.cost,
    )
    # Not stored: the row was skipped (changed in the sheet) or the job was taken over.
    return Answer(job_row_id, row.pk, "ok" if stored else "gone", cost=result.cost)
