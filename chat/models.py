"""Conversations with the assistant: sessions, their messages, and the changes it proposes.

A message's `seq` is assigned from its session's counter inside a transaction that locks the
session row, so messages keep the order in which the database accepted them, also when one
person sends from two tabs at once (the unique constraint would catch a slip).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sheets.models import Sheet


class ChatSession(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    title = models.CharField(max_length=200, blank=True)
    sheet = models.ForeignKey(
        Sheet,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_sessions",
        help_text="The sheet in context: its schema goes into the system prompt.",
    )
    archived = models.BooleanField(default=False)
    # The seq the next message gets; only ever read and bumped under select_for_update.
    next_seq = models.PositiveIntegerField(default=1, editable=False)
    # The model's summary of the messages up to summary_through_seq, sent in their place once
    # they no longer fit the history budget; extended as more turns fall out (chat/history.py).
    summary = models.TextField(blank=True, editable=False)
    summary_through_seq = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["owner", "archived", "updated_at"])]

    def __str__(self) -> str:
        return self.title or f"Chat {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "you"
        ASSISTANT = "assistant", "assistant"
        # What happened outside the conversation that the assistant must know (a change set
        # applied or discarded); shown as a note, sent to the model as a system message.
        EVENT = "event", "event"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting"
        STREAMING = "streaming", "writing"
        COMPLETE = "complete", "complete"
        STOPPED = "stopped", "stopped"
        ERROR = "error", "failed"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role)
    content = models.TextField(blank=True)
    # The assistant's tool calls, each {"id", "name", "arguments", "round"}, and their results,
    # each {"tool_call_id", "content"} (the JSON text the model was given).
    tool_calls = models.JSONField(default=list, blank=True)
    tool_results = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    stop_requested = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=10, default=0, help_text="USD")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="chat_message_seq_once")
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.role} in chat {self.session_id}"

    @property
    def dom_id(self) -> str:
        return f"m-{self.pk}"

    @property
    def working(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.STREAMING)


class ChangeSet(models.Model):
    """A write the assistant proposed; nothing happens until its owner presses Apply.

    `arguments` are the tool's arguments; `preview` is what the diff card shows and what the
    apply checks against (each cell's old value is the conflict check's expected value).
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", "waiting for you"
        APPLIED = "applied", "applied"
        PARTIAL = "partial", "partly applied"
        CONFLICT = "conflict", "refused: changed meanwhile"
        FAILED = "failed", "failed"
        DISCARDED = "discarded", "discarded"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="change_sets")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="change_sets")
    tool_call_id = models.CharField(max_length=100)
    tool = models.CharField(max_length=64)
    sheet = models.ForeignKey(Sheet, null=True, blank=True, on_delete=models.SET_NULL)
    arguments = models.JSONField(default=dict)
    preview = models.JSONField(default=dict)
    summary = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status, default=Status.PROPOSED)
    outcome = models.JSONField(default=dict, blank=True)
    outcome_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.tool} ({self.get_status_display()})"

    @property
    def dom_id(self) -> str:
        return f"cs-{self.pk}"

    @property
    def open(self) -> bool:
        return self.status == self.Status.PROPOSED
