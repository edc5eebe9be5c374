"""The one start-and-wait helper (core/processes.py) used by the suite, benchmarks and make run."""

from __future__ import annotations

import socket
import sys

import httpx
import pytest

from core.processes import ProcessFailed, port_in_use, process_start, process_stop


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_started_server_answers_as_soon_as_process_start_returns(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = process_start(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        ready=url,
        log=tmp_path / "server.log",
        cwd=tmp_path,
    )
    try:
        assert httpx.get(url, timeout=5).status_code == 200
    finally:
        process_stop(proc)
    assert proc.poll() is not None


def test_a_process_that_exits_early_is_reported_with_its_log_and_last_words(tmp_path):
    log = tmp_path / "broken.log"
    script = "import sys; print('cannot open the database'); sys.exit(3)"
    with pytest.raises(ProcessFailed) as failure:
        process_start(
            [sys.executable, "-c", script], ready=lambda: False, log=log, what="the broken server"
        )
    message = str(failure.value)
    assert "the broken server exited with code 3 before it was ready" in message
    assert str(log) in message
    assert "cannot open the database" in message


def test_a_process_never_ready_is_stopped_and_reported_after_the_timeout(tmp_path):
    checks = []

    def ready() -> bool:
        checks.append(1)
        return False

    log = tmp_path / "slow.log"
    with pytest.raises(ProcessFailed, match=r"the slow server was not ready within 0\.3 s") as fail:
        process_start(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            ready=ready,
            log=log,
            timeout=0.3,
            what="the slow server",
        )
    assert str(log) in str(fail.value)
    assert checks  # it kept asking until the deadline


def test_a_port_someone_listens_on_counts_as_in_use_and_a_closed_one_as_free():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)
