"""What pages, commands, chat tools and the admin call to make and steer AI jobs.

plan.py: `JobSpec`, `job_plan`, `job_preview`, `job_estimate`. control.py: `job_create`,
`job_start`, `job_pause`, `job_resume`, `job_cancel`, `job_retry_failed`. undo.py: `job_undo`.
All keyword-only; each checks the user's edit grant on the sheet.
"""

from __future__ import annotations

from jobs.services.control import (
    job_cancel,
    job_counts_refresh,
    job_create,
    job_enqueue,
    job_for_owner,
    job_pause,
    job_resume,
    job_retry_failed,
    job_rows_close,
    job_start,
)
from jobs.services.plan import (
    Estimate,
    JobInvalid,
    JobSpec,
    Plan,
    Preview,
    PreviewRow,
    deployment_choices,
    job_estimate,
    job_plan,
    job_preview,
)
from jobs.services.undo import UndoResult, job_undo

__all__ = [
    "Estimate",
    "JobInvalid",
    "JobSpec",
    "Plan",
    "Preview",
    "PreviewRow",
    "UndoResult",
    "deployment_choices",
    "job_cancel",
    "job_counts_refresh",
    "job_create",
    "job_enqueue",
    "job_estimate",
    "job_for_owner",
    "job_pause",
    "job_plan",
    "job_preview",
    "job_resume",
    "job_retry_failed",
    "job_rows_close",
    "job_start",
    "job_undo",
]
