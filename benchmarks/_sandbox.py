"""The benchmarks' own sandbox: a `manage.py sandbox` process on a free port, up until exit."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.processes import ProcessFailed, process_start, process_stop

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sandbox_running(port: int | None = None) -> Iterator[str]:
    """Start a sandbox seeded with the demo sheets; yields its base URL once it answers."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        sandbox = process_start(
            [sys.executable, "manage.py", "sandbox", "--port", str(port), "--seed", "demo"],
            ready=f"{url}/_sandbox/config",
            log=ROOT / "var" / "benchmark-sandbox.log",
            env={**os.environ, "SANDBOX": "true"},
            what="the sandbox",
        )
    except ProcessFailed as exc:
        raise SystemExit(str(exc)) from None
    try:
        yield url
    finally:
        process_stop(sandbox)
