"""Start a server process and wait until it answers: the one way the suite, the benchmarks and
`make run` do it.

`process_start` returns only once the process is ready (its URL answers, or a predicate holds).
A process that exits first, or never gets ready, raises `ProcessFailed`, naming its log and
quoting the log's last lines, so the reason is on screen rather than in a file nobody opens.

Importable without Django set up: it uses only the standard library and httpx.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

Ready = str | Callable[[], object]


class ProcessFailed(RuntimeError):
    """A process exited before it was ready, or was not ready in time."""


def url_answers(url: str) -> bool:
    """True when a GET of `url` gets a 2xx reply within a second."""
    try:
        return httpx.get(url, timeout=1).is_success
    except httpx.HTTPError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """True when a server could not listen on host:port (something else already does).

    SO_REUSEADDR, as the servers themselves set it, so a port whose last connections are only in
    TIME_WAIT counts as free.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            return True
    return False


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(["", f"--- last lines of {log} ---", *tail]) if tail else ""


def process_wait(
    ready: Ready,
    *,
    timeout: float,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    what: str = "the process",
    interval: float = 0.05,
) -> None:
    """Wait until `ready` (a URL that must answer 2xx, or a predicate) holds.

    Raises ProcessFailed when `proc` exits first or `timeout` seconds pass.
    """
    check = (lambda: url_answers(ready)) if isinstance(ready, str) else ready
    where = f"; see its log {log}" if log else ""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ProcessFailed(
                f"{what} exited with code {proc.returncode} before it was ready{where}"
                + _log_tail(log)
            )
        if check():
            return
        if time.monotonic() > deadline:
            waited_for = f" ({ready})" if isinstance(ready, str) else ""
            raise ProcessFailed(
                f"{what} was not ready{waited_for} within {timeout:g} s{where}" + _log_tail(log)
            )
        time.sleep(interval)


def process_stop(proc: subprocess.Popen, *, timeout: float = 10) -> None:
    """Terminate, then kill if it lingers; always reaps the process."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_start(
    cmd: Sequence[str],
    *,
    ready: Ready,
    log: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    what: str | None = None,
) -> subprocess.Popen:
    """Start `cmd` (output to `log`, or discarded) and return its Popen once `ready` holds.

    On failure the process is stopped and ProcessFailed says why, with the log's last lines.
    """
    what = what or Path(cmd[0]).name
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log if log is not None else os.devnull, "w")  # noqa: SIM115
    # The child keeps its own copy of the file descriptor; ours can close at once.
    with out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        process_wait(ready, timeout=timeout, proc=proc, log=log, what=what)
    except BaseException:
        process_stop(proc)
        raise
    return proc
