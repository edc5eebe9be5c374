"""One row through the model, and its answer stored on its JobRow before anything is written.

`answer_get` runs on the runner's threads and tells the runner what became of the row; the
runner stores the answers that came back together (`answers_store`, one statement) before any
of them is handed to the writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ai.calls import CallContext
from ai.errors import AIError, ItemError, RetryableError
from ai.schema import Column as OutputColumn
from jobs.models import Job, JobRow
from jobs.prompts import row_answer
from jobs.sql import rows_update
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
    value: Any = None  # "ok": the API value to write
    prompt_tokens: int = 0
    completion_tokens: int = 0


def answer_get(
    *,
    job: Job,
    inputs: Sequence[Column],
    target: Column,
    output: OutputColumn,
    context: CallContext,
    job_row_id: int,
    row: Row,
) -> Answer:
    """Ask the model for `row`; an "ok" answer is not stored yet (see answers_store)."""
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
    return Answer(
        job_row_id,
        row.pk,
        "ok",
        cost=result.cost,
        value=value,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
    )


_STORED = ("output", "has_output", "error", "prompt_tokens", "completion_tokens", "cost")


def answers_store(answers: Sequence[Answer]) -> None:
    """Store the "ok" answers on their JobRows in one statement, only on rows still running
    without an output; the others become "gone" (skipped since, or the job was taken over)."""
    ok = [answer for answer in answers if answer.kind == "ok"]
    stored = set(
        rows_update(
            JobRow,
            [
                (a.job_row_id, (a.value, True, "", a.prompt_tokens, a.completion_tokens, a.cost))
                for a in ok
            ],
            _STORED,
            where="status = %s AND NOT has_output",
            where_params=[JobRow.Status.RUNNING],
        )
    )
    for answer in ok:
        if answer.job_row_id not in stored:
            answer.kind = "gone"
