"""A job before it exists: the spec the form collects, checked into a plan, previewed on three
rows and estimated (rows, tokens, cost, time) offline.

`job_plan` checks the user's edit grant on the sheet first (PermissionDenied otherwise: a viewer
can preview nothing and start nothing), then the template, target, rows and deployment.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from ai.calls import CallContext
from ai.config import Deployment, deployment_get, deployments
from ai.errors import AIError, ItemError, RunError
from ai.schema import Column as OutputColumn
from ai.schema import response_format_for
from ai.tokens import count_messages, count_text
from jobs.models import Job
from jobs.prompts import (
    OUTPUT_KEY,
    TemplateInvalid,
    column_is_numeric,
    output_column,
    row_answer,
    row_messages,
    template_columns,
)
from sheets.grid_query import CellExtract, FilterInvalid, filter_parse, rows_filtered
from sheets.models import Column, Row, Sheet
from sheets.services import sheet_for_edit
from sheets.validation import column_read_only_reason

PREVIEW_ROWS = 3
# Column types a job can fill (others are computed by Smartsheet or need project settings).
FILLABLE_TYPES = ("TEXT_NUMBER", "PICKLIST", "MULTI_PICKLIST", "CHECKBOX", "DATE")
# Answers of these kinds are a word or two: a small max_tokens keeps the TPM charge low.
SHORT_ANSWER_TOKENS = 60
# Rows whose prompts are counted one by one for an estimate; beyond, the average is used.
ESTIMATE_SAMPLE = 2000


class JobInvalid(ValueError):
    """The job cannot run as asked; `message` says what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class JobSpec:
    sheet_id: int
    template: str
    # An existing column, or a new one created on the sheet when the job is created.
    target_column_id: int | None = None
    new_column_title: str = ""
    new_column_type: str = "TEXT_NUMBER"
    new_column_options: tuple[str, ...] = ()
    selection: str = Job.Selection.ALL
    filter_text: str = ""
    row_ids: tuple[int, ...] = ()
    deployment: str = ""
    max_tokens: int | None = None  # default: by the target's type
    batch_size: int = 100
    priority: str = Job.Priority.NORMAL
    budget: Decimal | None = None
    name: str = ""


@dataclass
class Plan:
    """A checked spec: what a job would read, ask and write."""

    spec: JobSpec
    sheet: Sheet
    inputs: list[Column]
    target: Column  # unsaved when the job will create it
    output: OutputColumn
    deployment: Deployment
    max_tokens: int
    rows: QuerySet[Row]

    @property
    def creates_column(self) -> bool:
        return self.target.pk is None

    def messages(self, row: Row) -> list[dict[str, Any]]:
        return row_messages(template=self.spec.template, columns=self.inputs, row=row)


def _target(spec: JobSpec, columns: list[Column]) -> Column:
    if spec.target_column_id:
        target = next((c for c in columns if c.pk == spec.target_column_id), None)
        if target is None:
            raise JobInvalid("The target column is not in this sheet; choose one of its columns.")
        reason = column_read_only_reason(target)
        if reason:
            raise JobInvalid(reason)
        if target.type not in FILLABLE_TYPES:
            raise JobInvalid(
                f"A job cannot fill “{target.title}” ({target.type}); choose a text, number, "
                "dropdown, checkbox or date column, or create a new one."
            )
        return target
    title = spec.new_column_title.strip()
    if not title:
        raise JobInvalid("Choose the column to fill, or give a title for a new column.")
    if any(c.title.casefold() == title.casefold() for c in columns):
        raise JobInvalid(f"The sheet already has a column “{title}”; choose it, or another title.")
    if spec.new_column_type not in FILLABLE_TYPES:
        raise JobInvalid(f"A new column can be one of {', '.join(FILLABLE_TYPES)}.")
    options = [o.strip() for o in spec.new_column_options if o.strip()]
    if spec.new_column_type in ("PICKLIST", "MULTI_PICKLIST") and not options:
        raise JobInvalid("A dropdown column needs its options, one per line.")
    return Column(
        sheet_id=spec.sheet_id,
        index=len(columns),
        title=title,
        type=spec.new_column_type,
        options=options,
        validation=bool(options),
    )


def rows_selected(
    spec: JobSpec, sheet: Sheet, columns: list[Column], target: Column
) -> QuerySet[Row]:
    rows = Row.objects.filter(sheet=sheet).order_by("row_number", "pk")
    if spec.selection == Job.Selection.ALL:
        return rows
    if spec.selection == Job.Selection.EMPTY:
        if target.pk is None:
            return rows
        return rows.annotate(_target=CellExtract(target.pk)).filter(_target__isnull=True)
    if spec.selection == Job.Selection.FILTER:
        try:
            condition = filter_parse(text=spec.filter_text, columns=columns)
        except FilterInvalid as exc:
            raise JobInvalid(str(exc)) from exc
        if condition is None:
            raise JobInvalid("Write a filter like “Channel = Email”, or choose all rows.")
        return rows_filtered(sheet=sheet, columns=columns, condition=condition, sort=None)
    if spec.selection == Job.Selection.ROWS:
        if not spec.row_ids:
            raise JobInvalid("Select the rows to fill in the grid first, or choose all rows.")
        return rows.filter(pk__in=list(spec.row_ids))
    raise JobInvalid("Choose which rows to fill: all, empty ones, a filter or selected rows.")


def job_plan(*, user, spec: JobSpec) -> Plan:
    """Check `spec` (grant, template, target, rows, deployment); JobInvalid says what is wrong."""
    sheet = sheet_for_edit(user=user, sheet_id=spec.sheet_id)
    columns = list(Column.objects.filter(sheet=sheet).order_by("index"))
    try:
        inputs = template_columns(template=spec.template, columns=columns)
    except TemplateInvalid as exc:
        raise JobInvalid(exc.message) from exc
    target = _target(spec, columns)
    if target.pk is not None and target in inputs and spec.selection == Job.Selection.EMPTY:
        raise JobInvalid("The prompt reads the target column, which is empty in every chosen row.")
    try:
        deployment = deployment_get(spec.deployment or None)
    except AIError as exc:
        raise JobInvalid(exc.message) from exc
    if not 1 <= spec.batch_size <= 500:
        raise JobInvalid("The batch size is between 1 and 500 rows.")
    if spec.priority not in Job.Priority.values:
        raise JobInvalid("The priority is high, normal or low.")
    if spec.budget is not None and spec.budget <= 0:
        raise JobInvalid("A budget is an amount in USD above 0, or none.")
    rows = rows_selected(spec, sheet, columns, target)
    numeric = (
        target.pk is not None
        and target.type == "TEXT_NUMBER"
        and column_is_numeric(column=target, rows=list(Row.objects.filter(sheet=sheet)[:200]))
    )
    output = output_column(column=target, numeric=numeric)
    short = output.type != "TEXT_NUMBER" or output.numeric
    max_tokens = spec.max_tokens or (SHORT_ANSWER_TOKENS if short else settings.JOBS_MAX_TOKENS)
    return Plan(
        spec=spec,
        sheet=sheet,
        inputs=inputs,
        target=target,
        output=output,
        deployment=deployment,
        max_tokens=max_tokens,
        rows=rows,
    )


# --- Preview and estimate ---------------------------------------------------------------------


@dataclass
class PreviewRow:
    row_id: int
    row_number: int
    inputs: dict[str, str]  # column title → the value the prompt got
    prompt: str
    value: Any = None
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class Preview:
    rows: list[PreviewRow]
    error: str = ""  # a stop-the-run error (deployment, credentials): nothing would work


def _sample(rows: QuerySet[Row], count: int) -> list[Row]:
    total = rows.count()
    if total <= count:
        return list(rows)
    picks = sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})
    return [rows[i] for i in picks]


def job_preview(*, user, spec: JobSpec) -> Preview:
    """The real code path on 3 rows of the selection, writing nothing."""
    plan = job_plan(user=user, spec=spec)
    context = CallContext(purpose="job_preview", user_id=user.pk)
    previews = []
    for row in _sample(plan.rows, PREVIEW_ROWS):
        preview = PreviewRow(
            row_id=row.pk,
            row_number=row.row_number,
            inputs={c.title: row.display(c.pk) for c in plan.inputs},
            prompt=plan.messages(row)[-1]["content"],
        )
        try:
            preview.value, result = row_answer(
                template=spec.template,
                inputs=plan.inputs,
                target=plan.target,
                output=plan.output,
                row=row,
                deployment=plan.deployment.name,
                max_tokens=plan.max_tokens,
                context=context,
            )
            preview.prompt_tokens = result.prompt_tokens
            preview.completion_tokens = result.completion_tokens
            preview.cost = result.cost
        except ItemError as exc:
            preview.error = exc.message
        except RunError as exc:
            return Preview(rows=previews, error=exc.message)
        except AIError as exc:
            preview.error = exc.message
        previews.append(preview)
    return Preview(rows=previews)


@dataclass
class Estimate:
    rows: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    seconds: float
    requests_per_minute: float
    notes: list[str] = field(default_factory=list)


def _answer_tokens(plan: Plan, preview: Preview | None) -> float:
    """Completion tokens per row: measured on the preview when there is one, else counted from
    the longest answer the schema allows (short kinds) or half of max_tokens (free text)."""
    measured = [p.completion_tokens for p in preview.rows if p.completion_tokens] if preview else []
    if measured:
        return sum(measured) / len(measured)
    model = plan.deployment.model
    if plan.output.options:
        longest = max(plan.output.options, key=len)
        answer = {OUTPUT_KEY: [longest] if plan.output.type == "MULTI_PICKLIST" else longest}
    elif plan.output.type == "CHECKBOX":
        answer = {OUTPUT_KEY: False}
    elif plan.output.type == "DATE":
        answer = {OUTPUT_KEY: "2026-01-01"}
    elif plan.output.numeric:
        answer = {OUTPUT_KEY: 12.5}
    else:
        return plan.max_tokens / 2
    return count_text(json.dumps(answer, separators=(",", ":")), model=model)


def job_estimate(*, user, spec: JobSpec, preview: Preview | None = None) -> Estimate:
    """Rows, tokens, cost and time before starting.

    Prompt tokens are counted offline for every selected row (beyond 2,000, on an even sample),
    then scaled by what the service reported for the preview's rows over our count of them: how
    the service renders a response schema is its own, and three real rows measure it. Answer
    lengths come from the preview too. Without a `preview`, one is run (3 model calls).
    """
    plan = job_plan(user=user, spec=spec)
    total = plan.rows.count()
    notes = []
    if preview is None:
        preview = job_preview(user=user, spec=spec)
    model = plan.deployment.model
    response_format = response_format_for([plan.output])

    def offline(row: Row) -> int:
        return count_messages(plan.messages(row), model=model, response_format=response_format)

    sample = _sample(plan.rows, ESTIMATE_SAMPLE) if total > ESTIMATE_SAMPLE else list(plan.rows)
    counted = [offline(row) for row in sample]
    per_row_prompt = sum(counted) / len(counted) if counted else 0
    measured = [p for p in preview.rows if p.prompt_tokens]
    if measured:
        rows = Row.objects.in_bulk([p.row_id for p in measured])
        ours = sum(offline(rows[p.row_id]) for p in measured if p.row_id in rows)
        if ours:
            per_row_prompt *= sum(p.prompt_tokens for p in measured) / ours
    else:
        notes.append("No preview row was answered: prompt tokens are our own count.")
    prompt_tokens = round(per_row_prompt * total)
    per_row_answer = _answer_tokens(plan, preview)
    completion_tokens = round(per_row_answer * total)
    cost = plan.deployment.cost(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    # The limiter charges prompt + max_tokens per request against TPM until the answer comes.
    per_request = per_row_prompt + plan.max_tokens
    rpm = min(plan.deployment.rpm, plan.deployment.tpm / per_request if per_request else math.inf)
    seconds = total / (rpm / 60) if total else 0.0
    if rpm < plan.deployment.rpm:
        notes.append(
            f"Tokens per minute, not requests, set the pace: {rpm:,.0f} rows a minute at most."
        )
    return Estimate(
        rows=total,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        seconds=seconds,
        requests_per_minute=rpm,
        notes=notes,
    )


def deployment_choices() -> list[str]:
    return list(deployments())
