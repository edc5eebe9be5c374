"""Is each configured deployment usable? A 1-token call answers: ok, credentials, not found,
throttled (but valid), unreachable. The last verdicts are kept in the database (a Redis restart
must not lose them) for /readyz and the staff banner; `manage.py check_ai` and every Celery
worker at start (the worker_ready signal) refresh them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction

from ai.calls import CallContext, call_send
from ai.config import Deployment, deployments
from ai.errors import (
    AIError,
    CredentialsError,
    DeploymentNotFoundError,
    ItemError,
    ThrottledError,
    UnavailableError,
)
from ai.models import DeploymentVerdict

logger = logging.getLogger(__name__)

# Statuses under which calls can succeed (a throttled deployment exists and takes the key).
USABLE = frozenset({"ok", "throttled"})
_CHECK_WAIT = 5.0


@dataclass(frozen=True)
class Verdict:
    deployment: str
    model: str
    status: str  # ok | throttled | credentials | not_found | unreachable | rejected
    message: str
    checked_at: str

    @property
    def usable(self) -> bool:
        return self.status in USABLE


def deployment_check(*, deployment: Deployment) -> Verdict:
    """Call the deployment once with max_tokens=1, without fallback or retries."""
    started = time.monotonic()
    try:
        with call_send(
            messages=[{"role": "user", "content": "Reply with OK."}],
            context=CallContext(purpose="check"),
            max_tokens=1,
            deployment=deployment,
            max_wait=_CHECK_WAIT,
            attempts=1,
            use_fallback=False,
        ) as call:
            call.usage = call.sent.response.usage
    except AIError as exc:
        status = _status_for(exc)
        return _verdict(deployment, status, _message_for(status, exc))
    latency_ms = round((time.monotonic() - started) * 1000)
    return _verdict(deployment, "ok", f"answered in {latency_ms} ms")


def _status_for(exc: AIError) -> str:
    if isinstance(exc, CredentialsError):
        return "credentials"
    if isinstance(exc, DeploymentNotFoundError):
        return "not_found"
    if isinstance(exc, ThrottledError):
        return "throttled"
    if isinstance(exc, UnavailableError):
        return "unreachable"
    if isinstance(exc, ItemError):
        return "ok"  # the deployment answered; it only disliked the probe
    return "rejected"


def _message_for(status: str, exc: AIError) -> str:
    if status == "throttled":
        return f"valid, but throttled right now: {exc.message}"
    if status == "ok":
        return f"answered ({exc.message})"
    return exc.message


def _verdict(deployment: Deployment, status: str, message: str) -> Verdict:
    return Verdict(
        deployment=deployment.name,
        model=deployment.model,
        status=status,
        message=message,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def deployments_check() -> list[Verdict]:
    """Check every configured deployment and keep the verdicts for /readyz and the banner."""
    verdicts = [deployment_check(deployment=d) for d in deployments().values()]
    with transaction.atomic():
        DeploymentVerdict.objects.all().delete()  # a deployment no longer configured goes too
        DeploymentVerdict.objects.bulk_create(
            DeploymentVerdict(
                position=position,
                deployment=v.deployment,
                model=v.model,
                status=v.status,
                message=v.message,
                checked_at=datetime.fromisoformat(v.checked_at),
            )
            for position, v in enumerate(verdicts)
        )
    return verdicts


def verdicts_last() -> list[Verdict] | None:
    """The verdicts of the last check, None before the first."""
    stored = list(DeploymentVerdict.objects.all())
    if not stored:
        return None
    return [
        Verdict(
            deployment=v.deployment,
            model=v.model,
            status=v.status,
            message=v.message,
            checked_at=v.checked_at.isoformat(timespec="seconds"),
        )
        for v in stored
    ]


def problem_summary() -> str | None:
    """One line naming the deployments that cannot be used, from the last check; else None."""
    verdicts = verdicts_last()
    if not verdicts:
        return None
    bad = [v for v in verdicts if not v.usable]
    if not bad:
        return None
    return " ".join(f"{v.deployment}: {v.status} — {v.message}" for v in bad)


def readiness_check() -> str | None:
    """For /readyz (registered as non-critical): the last verdict, or why there is none."""
    try:
        verdicts = verdicts_last()
    except Exception as exc:  # the database; its own check reports it
        return f"cannot read the last AI check ({type(exc).__name__})"
    if verdicts is None:
        return "not checked yet: run `manage.py check_ai` (every worker checks at start)"
    return problem_summary()


def deployments_check_and_log() -> list[Verdict]:
    """What a worker runs at start: check, and log an error a person can act on."""
    try:
        verdicts = deployments_check()
    except Exception:
        logger.exception("Azure OpenAI check at worker start failed")
        return []
    finally:
        close_old_connections()
    for verdict in verdicts:
        if verdict.usable:
            logger.info(
                "Azure OpenAI deployment %s (%s): %s — %s",
                verdict.deployment,
                verdict.model,
                verdict.status,
                verdict.message,
            )
        else:
            logger.error(
                "Azure OpenAI deployment %s (%s) is not usable at %s: %s — %s. "
                "Fix the configuration, then run `manage.py check_ai`.",
                verdict.deployment,
                verdict.model,
                settings.AZURE_OPENAI_ENDPOINT,
                verdict.status,
                verdict.message,
            )
    return verdicts


def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """celery.signals.worker_ready: check in the background so the worker starts consuming."""
    threading.Thread(
        target=deployments_check_and_log, name="ai-deployments-check", daemon=True
    ).start()
