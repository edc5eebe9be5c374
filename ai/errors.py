"""What went wrong with a call, sorted by what the caller should do about it.

- RetryableError: the service is busy or briefly down. Try the same item again later
  (`retry_after` says when, if the service said).
- ItemError: this item cannot succeed as it is (content filter, too long, unusable output).
  Record it against the item and carry on with the others.
- RunError: nothing will succeed until a person fixes the configuration (credentials, deployment
  name, endpoint). Stop the run and show the message.

`outcome` is what a usage record stores for each.
"""

from __future__ import annotations


class AIError(Exception):
    outcome = "error"

    def __init__(self, message: str, *, deployment: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.deployment = deployment


class RetryableError(AIError):
    def __init__(
        self, message: str, *, deployment: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, deployment=deployment)
        self.retry_after = retry_after


class ThrottledError(RetryableError):
    """429s outlasted our attempts, or the next free slot is further away than the caller waits."""

    outcome = "throttled"


class UnavailableError(RetryableError):
    """5xx, timeouts, connection failures, or the deployment's circuit breaker is open."""

    outcome = "unavailable"


class ItemError(AIError):
    outcome = "failed"


class ContentFilterError(ItemError):
    outcome = "content_filter"

    def __init__(self, message: str, *, deployment: str = "", where: str = "prompt") -> None:
        super().__init__(message, deployment=deployment)
        self.where = where  # "prompt" (400) or "completion" (finish_reason content_filter)


class ContextLengthError(ItemError):
    outcome = "context_length"


class InvalidOutputError(ItemError):
    outcome = "invalid_output"


class RunError(AIError):
    outcome = "rejected"


class CredentialsError(RunError):
    outcome = "credentials"


class DeploymentNotFoundError(RunError):
    outcome = "not_found"


class RequestRejectedError(RunError):
    """A 400 that is not about one item's content: a parameter or schema the service refuses."""
