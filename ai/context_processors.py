from __future__ import annotations

import logging

from django.http import HttpRequest

from ai.checks import problem_summary

logger = logging.getLogger(__name__)


def ai_status(request: HttpRequest) -> dict:
    """`ai_problem` for staff: what the last deployment check found wrong, else None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {}
    try:
        return {"ai_problem": problem_summary()}
    except Exception:  # a page must render even when the last check cannot be read
        logger.warning("cannot read the last Azure OpenAI check", exc_info=True)
        return {}
