from __future__ import annotations

import pytest

from core.tasks import ping


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_on_a_real_worker_through_the_redis_broker(celery_worker):
    result = ping.delay("hello from the suite")
    assert result.get(timeout=60) == "hello from the suite"


def test_celery_is_configured_for_long_fair_tasks():
    from config.celery import app

    conf = app.conf
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.broker_url.startswith("redis://")
    assert app.amqp.router.route({}, "chat.turn")["queue"].name == "interactive"
    assert app.amqp.router.route({}, "jobs.run")["queue"].name == "bulk"
