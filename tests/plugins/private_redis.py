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

from core.processes import process_start, process_stop


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
        self.proc = process_start(
            [
                self.executable,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            ],
            ready=self.answers,
            timeout=30,
            what=f"redis-server on port {self.port}",
        )

    def answers(self) -> bool:
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            return bool(probe.ping())
        except redis.RedisError:
            return False
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
        if self.proc is not None:
            process_stop(self.proc)
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
