"""`make run` (scripts/run.py) checks every port it needs before it touches any database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on (and never answers)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_run(tmp_path: Path, **environment: str) -> tuple[subprocess.CompletedProcess, Path]:
    database = tmp_path / "db.sqlite3"
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": f"{settings.REDIS_PREFIX}-run",
        "WEB_PORT": str(_free_port()),
        "SANDBOX_PORT": str(_free_port()),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
        **environment,
    }
    result = subprocess.run(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, database


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("WEB_PORT", "{port}"),
        ("SANDBOX_PORT", "{port}"),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0"),
    ],
)
def test_make_run_on_a_taken_port_names_the_setting_and_touches_no_database(
    tmp_path, taken_port, setting, value
):
    result, database = make_run(tmp_path, **{setting: value.format(port=taken_port)})

    assert result.returncode == 1
    assert f"port {taken_port} ({setting}) is already in use" in result.stdout
    assert f"{setting}=" in result.stdout  # how to pick another
    assert "migrating" not in result.stdout
    assert not database.exists()


def test_make_run_refuses_a_production_start_without_credentials_in_plain_words(tmp_path):
    result, database = make_run(tmp_path, SANDBOX="false")

    assert result.returncode == 1
    assert "SMARTSHEET_ACCESS_TOKEN" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not database.exists()


def test_ctrl_c_while_the_sheets_are_being_mirrored_stops_everything_without_a_traceback(
    tmp_path,
):
    """Ctrl-C reaches the whole process group; the setup commands (sync_sheets, then
    register_webhooks) used to die mid-import with a KeyboardInterrupt traceback, or to run on
    after Redis had stopped and print a CommandError."""
    import signal
    import time

    env = {
        "PATH": os.environ["PATH"],
        "SANDBOX": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": f"{settings.REDIS_PREFIX}-run-stop",
        "WEB_PORT": str(_free_port()),
        "SANDBOX_PORT": str(_free_port()),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "mirroring sheets" not in log.read_text():
            assert run.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    time.sleep(2)  # a setup command left running would print after run.py is gone
    output = log.read_text()
    assert "SIGINT received" in output
    assert "Traceback" not in output, output
    assert "CommandError" not in output, output
    assert "ready: open" not in output
