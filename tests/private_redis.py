"""A redis-server of a test's own, for outage tests (never stop the machine's shared Redis)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.conftest import require_tool, stop_process, wait_until


class PrivateRedis:
    """One redis-server on a free port, without persistence, that a test may stop and start."""

    def __init__(self) -> None:
        self.executable = require_tool("redis-server")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        # No persistence: a restart comes back empty, as after a crash.
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.executable, "--port", str(self.port), *options], stdout=subprocess.DEVNULL
        )
        wait_until(self._answers, timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited early")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
