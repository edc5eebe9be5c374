"""A Celery worker outlives a Redis (broker) outage while it holds an unacknowledged message."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from core.processes import process_start, process_stop
from tests.conftest import server_env, server_log_path, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SETTLE = 60


def _probe_app(broker_url: str) -> Celery:
    """An app like config.celery's (same queues, key prefix) whose broker is the private Redis."""
    from config.celery import app

    probe = Celery("probe", set_as_current=False)
    probe.conf.update(
        broker_url=broker_url,
        result_backend=broker_url,
        broker_transport_options=app.conf.broker_transport_options,
        result_backend_transport_options=app.conf.result_backend_transport_options,
        task_default_queue=app.conf.task_default_queue,
        task_routes=app.conf.task_routes,
        task_serializer="json",
        accept_content=["json"],
    )
    return probe


@pytest.fixture
def probe(private_redis) -> Iterator[Celery]:
    probe = _probe_app(private_redis.url)
    try:
        yield probe
    finally:
        probe.close()


@pytest.fixture
def worker_log() -> Path:
    return server_log_path("broker-outage-celery")


@pytest.fixture
def worker(private_redis, probe, sandbox, worker_log) -> Iterator[subprocess.Popen]:
    """A real worker on the private Redis (the sandbox answers the AI check it runs at start)."""
    proc = process_start(
        [
            sys.executable,
            *("-m", "celery", "-A", "config", "worker", "-Q", "interactive,bulk"),
            *("-P", "threads", "-c", "2"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"),
        ],
        ready=lambda: probe.control.ping(timeout=0.5),
        log=worker_log,
        timeout=SETTLE,
        env=server_env(TEST_REDIS_URL=private_redis.url),
        what="the Celery worker",
    )
    try:
        yield proc
    finally:
        process_stop(proc)


def _redis_stopped(private_redis) -> None:
    """A clean shutdown: Redis closes its clients' connections."""
    private_redis.stop()


def _redis_hung_then_killed(private_redis) -> None:
    """Hung (SIGSTOP: sockets open, nothing answers), then killed: connections reset."""
    private_redis.proc.send_signal(signal.SIGSTOP)
    private_redis.proc.kill()
    private_redis.proc.wait()
    private_redis.proc = None


@pytest.mark.parametrize(
    "outage", [_redis_stopped, _redis_hung_then_killed], ids=["stopped", "hung"]
)
def test_a_worker_holding_a_countdown_task_outlives_a_redis_outage(
    private_redis, probe, worker, worker_log, outage
):
    # The worker holds a countdown task's message unacknowledged until it is due.
    later = probe.send_task("core.ping", args=["later"], countdown=600)
    wait_until(
        lambda: f"{later.id}] received" in worker_log.read_text(errors="replace"),
        timeout=SETTLE,
        what="the worker to receive the countdown task",
    )

    outage(private_redis)
    private_redis.start()  # empty, as after a crash

    now = probe.send_task("core.ping", args=["after the outage"])
    wait_until(
        lambda: worker.poll() is not None or now.ready(),
        timeout=SETTLE,
        what="the worker to run a task after the outage",
    )
    log = worker_log.read_text(errors="replace")
    assert worker.poll() is None, f"the worker exited:\n{log[-3000:]}"
    assert now.get(timeout=1) == "after the outage"
    assert "Connection to broker lost" in log
    assert "Traceback" not in log, log[-3000:]
    assert "CPendingDeprecationWarning" not in log
