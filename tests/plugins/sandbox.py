"""The sandbox as a pytest fixture: one `manage.py sandbox` subprocess per test session.

Tests reach it only over loopback HTTP (the real SDKs, or raw HTTP for the control endpoints).
`sandbox` resets it to the seed before each test that uses it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.processes import process_start, process_stop

ROOT = Path(__file__).resolve().parent.parent.parent

# One client for every control call: `httpx.request` builds a client, and with it an SSL context
# (25 ms of CPU), on each call, and most tests make a few. No keep-alive: each call opens its own
# loopback connection, as before, so a connection the sandbox dropped is never reused.
_http = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


# An SDK client given no user agent names its caller by walking the whole stack with
# inspect.stack() (90 ms of CPU under pytest, per client); the tests' clients name themselves.
USER_AGENT = "workbench-tests"


def url_answers(url: str) -> bool:
    """True when a GET of `url` gets a 2xx reply within a second (core.processes.url_answers,
    without a new client per probe: a server start is polled every 50 ms)."""
    try:
        return _http.get(url, timeout=1).is_success
    except httpx.HTTPError:
        return False


@dataclass
class Sandbox:
    url: str

    @property
    def smartsheet_base(self) -> str:
        return f"{self.url}/2.0"

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = _http.request(method, f"{self.url}/_sandbox/{path}", **kwargs)
        response.raise_for_status()
        return response

    def configure(self, **sections: dict) -> dict:
        """Merge e.g. configure(smartsheet={"rpm": 60}) into the sandbox config; returns it all."""
        return self.control("POST", "config", json=sections).json()

    def config(self) -> dict:
        return self.control("GET", "config").json()

    def stats(self) -> dict:
        return self.control("GET", "stats").json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def fault(
        self,
        service: str,
        kind: str | int,
        *,
        times: int = 1,
        route: str | None = None,
        sheet: int | None = None,
        deployment: str | None = None,
        **params: object,
    ) -> dict:
        """Arm a scripted fault: the next `times` requests that match fail with `kind`.

        e.g. fault("openai", 429, deployment="gpt-4o-mini", times=3, retry_after=0.1) or
        fault("smartsheet", "4004", route="PUT /sheets/{id}/rows", sheet=sid). Kinds and their
        parameters are in sandbox/README.md; returns the armed rule (its id, remaining, ...).
        """
        spec: dict = {"service": service, "times": times, "fault": {"kind": str(kind), **params}}
        for key, value in (("route", route), ("sheet", sheet), ("deployment", deployment)):
            if value is not None:
                spec[key] = value
        response = _http.post(f"{self.url}/_sandbox/faults", json=spec)
        if response.status_code == 400:
            raise ValueError(response.json()["error"])
        response.raise_for_status()
        return response.json()

    def faults(self) -> list[dict]:
        """The armed rules, oldest first, each with how often it fired and how many remain."""
        return self.control("GET", "faults").json()["faults"]

    def clear_faults(self) -> int:
        """Disarm every rule; returns how many entries had not fired."""
        return self.control("DELETE", "faults").json()["cleared"]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    port = os.environ["SANDBOX_PORT"]
    sandbox = Sandbox(url=f"http://127.0.0.1:{port}")
    proc = process_start(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--seed",
            "demo",
        ],
        ready=lambda: url_answers(f"{sandbox.url}/_sandbox/config"),
        log=ROOT / "var" / "test-sandbox.log",
        timeout=120,  # see START_TIMEOUT in tests/conftest.py
        # The sandbox app is installed only in sandbox mode.
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "SANDBOX": "true"},
        what="the sandbox",
    )
    try:
        yield sandbox
    finally:
        process_stop(proc)


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, back at its seed with zeroed stats and default config."""
    sandbox_server.reset()
    return sandbox_server
