"""The benchmarks' own sandbox: a `manage.py sandbox` process on a free port, up until exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

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
    sandbox = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", "--port", str(port), "--seed", "demo"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/_sandbox/config", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or sandbox.poll() is not None:
                    raise SystemExit("the sandbox did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        sandbox.terminate()
        sandbox.wait(10)
