"""Celery tasks of the chat (queue `interactive`: a person is waiting): ids in, re-read inside."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from chat.assistant import assistant_reply
from chat.models import Message


@shared_task(acks_late=True, soft_time_limit=5 * 60, time_limit=6 * 60)
def assistant_reply_task(message_id: int) -> None:
    try:
        assistant_reply(message_id=message_id)
    except SoftTimeLimitExceeded:
        Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
            status=Message.Status.ERROR,
            error="The reply took too long and was stopped. What arrived is kept; retry.",
        )
        raise
