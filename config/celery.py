"""The Celery app: Redis broker, two queues (`interactive`, `bulk`), settings from Django.

The worker runs `Consumer` below (CELERY_WORKER_CONSUMER), Celery's own with one guard so a
Redis outage does not stop the worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("workbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    """Celery's consumer, which survives losing Redis while it holds unacknowledged messages.

    On a broken broker connection Celery 5.7.0 first collects the connection, which detaches
    kombu's transport from the broker URL, then closes it (celery/worker/consumer/consumer.py,
    on_connection_error_after_connected, since celery/celery#10242). When the worker holds an
    unacknowledged message (a countdown task waiting, a running acks_late task) and Redis is
    unreachable, collecting leaves that channel half closed, and closing it tries to put the
    messages back through a new Redis client built from the detached transport:
    AttributeError "'NoneType' object has no attribute 'hostname'" (kombu/transport/redis.py,
    Channel._connparams). `ignore_errors` lets it through and the worker exits.

    Nothing is lost by ignoring it: Redis was unreachable, so the messages could not have been
    put back anyway. They stay in the transport's unacked set, from which Redis delivers them
    again after the visibility timeout (if Redis kept its data).
    """

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # Celery closes the connection it has just collected through `connection.close`.
            connection.close = _closing_a_collected_connection(connection.close)
        super().on_connection_error_after_connected(exc)


def _closing_a_collected_connection(close: Callable[[], None]) -> Callable[[], None]:
    def guarded_close() -> None:
        try:
            close()
        except AttributeError as exc:
            # Expected on an outage: one line, no traceback.
            logger.warning(
                "Lost Redis while holding unacknowledged messages: they could not be put back "
                "on their queue now; Redis delivers them again after the visibility timeout "
                "(kombu: %s).",
                exc,
            )

    return guarded_close
