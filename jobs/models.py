"""AI jobs: a prompt run over a sheet's rows to fill one column, and each row's outcome.

Status changes are conditional updates (`UPDATE … WHERE status = …`, see `Job.transition`), so
two workers, or a worker and a person pressing Cancel, never both act on the same state.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        CANCELLING = "cancelling", "cancelling"
        CANCELLED = "cancelled", "cancelled"
        COMPLETED = "completed", "completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "completed with errors"
        FAILED = "failed", "failed"

    class Priority(models.TextChoices):
        HIGH = "high", "high"
        NORMAL = "normal", "normal"
        LOW = "low", "low"

    class Selection(models.TextChoices):
        ALL = "all", "all rows"
        EMPTY = "empty", "rows where the target is empty"
        FILTER = "filter", "rows matching a filter"
        ROWS = "rows", "selected rows"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)
    FINISHED = (
        Status.CANCELLED,
        Status.COMPLETED,
        Status.COMPLETED_WITH_ERRORS,
        Status.FAILED,
    )

    sheet = models.ForeignKey("sheets.Sheet", on_delete=models.CASCADE, related_name="jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    name = models.CharField(max_length=200, blank=True)
    template = models.TextField(help_text="Prompt with {{Column Title}} references.")
    target_column_id = models.BigIntegerField()
    target_title = models.CharField(max_length=255)
    # Columns the template references, by id (titles may be renamed while the job exists).
    input_column_ids = models.JSONField(default=list)
    selection = models.CharField(max_length=8, choices=Selection, default=Selection.ALL)
    filter_text = models.CharField(max_length=500, blank=True)
    row_ids = models.JSONField(default=list, blank=True, help_text="For 'selected rows'.")
    batch_size = models.PositiveIntegerField(default=100)
    priority = models.CharField(max_length=8, choices=Priority, default=Priority.NORMAL)
    deployment = models.CharField(max_length=64)
    max_tokens = models.PositiveIntegerField(default=400)
    # The answer's shape (ai.schema.Column fields), fixed when the job is created.
    output_spec = models.JSONField(default=dict)
    budget = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, help_text="USD cap; optional."
    )

    status = models.CharField(max_length=24, choices=Status, default=Status.QUEUED)
    reason = models.TextField(blank=True, help_text="Why it paused, stopped or failed.")
    # Each run claims the job with a fresh token: a worker whose token is gone stops.
    run_token = models.CharField(max_length=32, blank=True)
    runs = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal(0))
    estimated_cost = models.DecimalField(max_digits=16, decimal_places=10, null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(
        null=True, blank=True, help_text="When the rows' values before were read."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self) -> str:
        return self.name or f"job {self.pk} on {self.sheet_id}"

    @property
    def rows_finished(self) -> int:
        return self.rows_done + self.rows_failed + self.rows_skipped

    @property
    def percent(self) -> int:
        if not self.rows_total:
            return 100 if self.status in self.FINISHED else 0
        return min(100, round(100 * self.rows_finished / self.rows_total))

    def transition(self, *, to: str, frm: tuple[str, ...] | str, **fields) -> bool:
        """Move to `to` only if the status is still one of `frm`; True if this call moved it."""
        frm = (frm,) if isinstance(frm, str) else frm
        fields = {"status": to, **fields}
        if to in self.FINISHED:
            fields.setdefault("finished_at", timezone.now())
        moved = Job.objects.filter(pk=self.pk, status__in=frm).update(**fields) == 1
        if moved:
            for name, value in fields.items():
                setattr(self, name, value)
        return moved


class JobRow(models.Model):
    """One row of a job. Its model output is stored before the cell is written, so a resumed
    job neither asks the model again nor loses the answer; `write_started_at` says a write may
    have reached Smartsheet (compare before writing again)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="rows")
    row_id = models.BigIntegerField()
    row_number = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status, default=Status.PENDING)
    value_before = models.JSONField(null=True, blank=True)
    # The model's value for the target column, as written to Smartsheet.
    output = models.JSONField(null=True, blank=True)
    has_output = models.BooleanField(default=False)
    write_started_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Model calls made.")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal(0))
    cell_edit = models.ForeignKey(
        "sheets.CellEdit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "row_number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row_id"], name="jobrow_one_per_row"),
        ]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return f"row {self.row_number} of job {self.job_id} ({self.status})"
