from __future__ import annotations

from django.conf import settings
from django.db import models


class UsageRecord(models.Model):
    """One call to Azure OpenAI: who, what for, which deployment, tokens, cost, time, outcome.

    `ai` knows nothing of jobs or chat, so the job and chat session are plain ids.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        CONTENT_FILTER = "content_filter", "Content filter"
        CONTEXT_LENGTH = "context_length", "Too long"
        INVALID_OUTPUT = "invalid_output", "Invalid output"
        FAILED = "failed", "Item failed"
        THROTTLED = "throttled", "Throttled"
        UNAVAILABLE = "unavailable", "Unavailable"
        CREDENTIALS = "credentials", "Credentials refused"
        NOT_FOUND = "not_found", "Deployment not found"
        REJECTED = "rejected", "Request rejected"
        # The caller stopped reading a streamed reply before its end (a chat's Stop button).
        STOPPED = "stopped", "Stopped by the caller"
        ERROR = "error", "Error"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ai_usage_records",
    )
    purpose = models.CharField(max_length=32, help_text="e.g. job, chat, preview, check")
    job_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    chat_session_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    deployment = models.CharField(max_length=64)
    model = models.CharField(max_length=64, blank=True)
    fallback_from = models.CharField(
        max_length=64, blank=True, help_text="The primary deployment, when the fallback answered."
    )
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=10, default=0, help_text="USD")
    latency_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} on {self.deployment}: {self.outcome}"


class DeploymentVerdict(models.Model):
    """The last check of one deployment (`manage.py check_ai`, every worker at start).

    In the database, not the cache: /readyz and the staff banner must still know it after Redis
    restarts empty.
    """

    position = models.PositiveSmallIntegerField(help_text="Order in AZURE_OPENAI_DEPLOYMENTS.")
    deployment = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16)
    message = models.TextField(blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.deployment}: {self.status}"
