"""Logging filters for conditions that are expected and must not read like crashes.

Referenced from LOGGING in config/settings.py.
"""

from __future__ import annotations

import logging


class BeatSendFailure(logging.Filter):
    """Celery beat logs a scheduled task it could not send with a traceback and a stack dump.

    That happens whenever the broker is away (a Redis outage, or kombu tripping over a channel
    that the outage closed) and beat simply sends the task again when it is next due: the poller
    runs every SHEETS_POLL_INTERVAL. One warning line says so; other beat records pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # Imported here: LOGGING is configured while Django starts, in every process.
        from celery.beat import SchedulingError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, SchedulingError):
            record.msg = "beat could not send a scheduled task (%s); it sends it when next due"
            record.args = (exc,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
