"""A redis-server of the test's own, on a free port, that the test may stop and start again.

Outage tests use it so they never touch the machine's Redis (other people's tests use that one).
No persistence: a restart comes back empty, as a Redis that lost its data would.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        from tests.conftest import wait_until

        self.proc = subprocess.Popen(
            [
                self.executable,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited early")
            try:
                return bool(probe.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, timeout=10, what=f"redis-server on port {self.port}")
        finally:
            probe.close()

    def freeze(self) -> None:
        """Hang it (SIGSTOP): connections stay open and connecting still works, nothing answers."""
        self.proc.send_signal(signal.SIGSTOP)

    def crash(self) -> None:
        """Kill it at once (a frozen one too); its clients see their connections reset."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        from tests.conftest import stop_process

        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


@pytest.fixture
def private_redis(settings) -> Iterator[PrivateRedis]:
    """A fresh redis-server, and REDIS_URL and the cache pointed at it for this test."""
    from tests.conftest import require_tool

    server = PrivateRedis(require_tool("redis-server"))
    server.start()
    settings.REDIS_URL = server.url
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": server.url,
        }
    }
    try:
        yield server
    finally:
        server.stop()
