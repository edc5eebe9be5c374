"""The local mirror of Smartsheet sheets: what the grid, jobs and chat read instead of the API.

Primary keys are Smartsheet's own ids (globally unique there), so upserts need no lookups and
URLs carry the id people see in Smartsheet.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class Sheet(models.Model):
    class SyncState(models.TextChoices):
        NEVER = "never", "never synced"
        SYNCING = "syncing", "syncing"
        OK = "ok", "in sync"
        FAILED = "failed", "failed"
        # Smartsheet answers 404/403: deleted, or no longer shared. Not polled any more.
        GONE = "gone", "gone from Smartsheet"

    id = models.BigIntegerField(primary_key=True, help_text="Smartsheet sheet id")
    name = models.CharField(max_length=255)
    version = models.BigIntegerField(null=True, blank=True, help_text="mirrored version")
    row_count = models.PositiveIntegerField(default=0)
    permalink = models.URLField(max_length=500, blank=True)

    sync_state = models.CharField(max_length=16, choices=SyncState, default=SyncState.NEVER)
    sync_outcome = models.CharField(max_length=500, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # When the last successful sync started: the next rowsModifiedSince counts from here.
    sync_started_at = models.DateTimeField(null=True, blank=True)
    # A webhook callback asked for a sync that could not be queued (Redis down): the request is
    # kept here, durably, until a sync that started after it succeeds (see sheets_needing_sync).
    sync_requested_at = models.DateTimeField(null=True, blank=True)

    webhook_id = models.BigIntegerField(null=True, blank=True, unique=True)
    webhook_status = models.CharField(max_length=40, blank=True)
    # Never shown in pages or admin (the admin excludes it).
    webhook_shared_secret = models.CharField(max_length=200, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name or str(self.id)


class Column(models.Model):
    id = models.BigIntegerField(primary_key=True, help_text="Smartsheet column id")
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="columns")
    index = models.PositiveIntegerField()
    title = models.CharField(max_length=255)
    type = models.CharField(max_length=40)
    primary = models.BooleanField(default=False)
    options = models.JSONField(default=list, blank=True)
    system_column_type = models.CharField(max_length=40, blank=True)
    validation = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)
    locked = models.BooleanField(default=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["sheet", "index"]

    def __str__(self) -> str:
        return self.title


class Row(models.Model):
    """One row; `cells` maps column id (str) to {"value", "displayValue", "formula"}.

    Empty cells are left out, and so is any key Smartsheet did not send.
    """

    id = models.BigIntegerField(primary_key=True, help_text="Smartsheet row id")
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()
    parent_id = models.BigIntegerField(null=True, blank=True)
    modified_at = models.DateTimeField(null=True, blank=True)
    cells = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["sheet", "row_number"]
        indexes = [models.Index(fields=["sheet", "row_number"])]

    def __str__(self) -> str:
        return f"row {self.row_number} of sheet {self.sheet_id}"

    def value(self, column_id: int):
        return self.cells.get(str(column_id), {}).get("value")

    def display(self, column_id: int) -> str:
        cell = self.cells.get(str(column_id), {})
        if "displayValue" in cell:
            return cell["displayValue"]
        value = cell.get("value")
        return "" if value is None else str(value)


class SheetGrant(models.Model):
    """A user's or a group's access to one sheet: view (read-only grid) or edit.

    Staff need no grant: they edit every sheet. A user with several grants (their own and their
    groups') gets the strongest.
    """

    class Role(models.TextChoices):
        VIEW = "view", "can view"
        EDIT = "edit", "can edit"

    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sheet_grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="sheet_grants"
    )
    role = models.CharField(max_length=8, choices=Role, default=Role.EDIT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sheet", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="sheetgrant_user_or_group",
                violation_error_message="A grant is for a user or for a group; choose one.",
            ),
            models.UniqueConstraint(
                fields=["sheet", "user"],
                condition=models.Q(user__isnull=False),
                name="sheetgrant_one_per_user",
                violation_error_message="This user already has a grant on this sheet.",
            ),
            models.UniqueConstraint(
                fields=["sheet", "group"],
                condition=models.Q(group__isnull=False),
                name="sheetgrant_one_per_group",
                violation_error_message="This group already has a grant on this sheet.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group} {self.get_role_display()} {self.sheet}"


class WebhookRejection(models.Model):
    """A sample of the callbacks the receiver refused (worth a look).

    At most one record per kind (reason, and webhook when it is ours) per
    WEBHOOK_REJECTION_SAMPLE_SECONDS, so forged traffic costs no database write per call and
    cannot crowd out the refusals of our own webhooks; `count` says how many refusals of its kind
    the record stands for. Every refusal is counted in Redis (shown above the admin list).
    """

    class Reason(models.TextChoices):
        UNKNOWN_WEBHOOK = "unknown_webhook", "unknown webhook"
        BAD_SIGNATURE = "bad_signature", "bad signature"
        CHALLENGE_REFUSED = "challenge_refused", "challenge for a webhook not being enabled"

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.CharField(max_length=32, choices=Reason)
    webhook_id = models.BigIntegerField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    body_excerpt = models.TextField(blank=True)
    count = models.PositiveIntegerField(
        default=1, help_text="refusals of this kind since the previous record, this one included"
    )

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.webhook_id})"


class WebhookNonce(models.Model):
    """A callback already acted on: its nonce, kept WEBHOOK_NONCE_TTL seconds.

    In the database rather than Redis so a replay is still recognised after Redis restarts
    empty; written in the same transaction as the callback's effect, so a callback that failed
    half-way is not mistaken for a replay when Smartsheet retries it.
    """

    webhook_id = models.BigIntegerField()
    nonce = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["webhook_id", "nonce"], name="webhook_nonce_once")
        ]

    def __str__(self) -> str:
        return f"{self.nonce} ({self.webhook_id})"


class CellEdit(models.Model):
    """One cell write asked for by a person (grid, paste, chat, MCP) or a job: the journal.

    `expected` is the value the writer started from (the conflict check compares Smartsheet's
    value with it); `old_value` is what Smartsheet held when the write went through, so an undo
    restores what was really there. Values are the API's JSON values; formula cells keep their
    formula text beside them.
    """

    class Source(models.TextChoices):
        GRID = "grid", "grid"
        PASTE = "paste", "paste"
        JOB = "job", "AI job"
        CHAT = "chat", "chat"
        MCP = "mcp", "MCP"
        UNDO = "undo", "undo"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for Smartsheet"
        APPLIED = "applied", "applied"
        CONFLICT = "conflict", "refused: changed in Smartsheet"
        FAILED = "failed", "failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="cell_edits"
    )
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="cell_edits")
    row_id = models.BigIntegerField()
    column_id = models.BigIntegerField()
    expected = models.JSONField(null=True, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    old_formula = models.TextField(blank=True)
    new_formula = models.TextField(blank=True)
    old_display = models.TextField(blank=True)
    new_display = models.TextField(blank=True)
    source = models.CharField(max_length=8, choices=Source, default=Source.GRID)
    status = models.CharField(max_length=8, choices=Status, default=Status.PENDING)
    # "Use mine" after a conflict: written over a value the writer did not start from.
    forced = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    version = models.BigIntegerField(null=True, blank=True, help_text="sheet version after it")
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    undoes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["sheet", "-created_at"]),
            models.Index(fields=["status", "id"], name="sheets_celledit_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} edit of row {self.row_id} ({self.status})"


class RowEdit(models.Model):
    """Rows added or deleted, journaled like cells; a delete keeps the rows to put them back."""

    class Kind(models.TextChoices):
        ADD = "add", "added"
        DELETE = "delete", "deleted"

    class Status(models.TextChoices):
        APPLIED = "applied", "applied"
        CONFLICT = "conflict", "refused: changed in Smartsheet"
        FAILED = "failed", "failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="row_edits"
    )
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="row_edits")
    kind = models.CharField(max_length=8, choices=Kind)
    row_ids = models.JSONField(default=list, blank=True)
    # For a delete: each row as it was ({"id", "parent_id", "next_id", "cells"}) in sheet order.
    rows = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=8, choices=CellEdit.Source, default=CellEdit.Source.GRID)
    status = models.CharField(max_length=8, choices=Status, default=Status.APPLIED)
    error = models.TextField(blank=True)
    version = models.BigIntegerField(null=True, blank=True, help_text="sheet version after it")
    created_at = models.DateTimeField(auto_now_add=True)
    undoes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["sheet", "-created_at"])]

    def __str__(self) -> str:
        return f"{len(self.row_ids)} row(s) {self.get_kind_display()} ({self.status})"
