"""The benchmarks' own sandbox: a `manage.py sandbox` process on a free port, up until exit."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
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


def benchmark_run(name: str, run: Callable[[str], None], **env: str) -> None:
    """Run `run(sandbox_url)` in sandbox mode against a fresh sandbox, then forget its Redis keys.

    The app gets its own Redis prefix, the sandbox's port, no real credentials, the extra `env`,
    and (unless DATABASE_URL is set) a throwaway SQLite file var/benchmark-<name>.sqlite3.
    """
    port = free_port()
    os.environ.update(
        SANDBOX="true",  # the app refuses to start without credentials otherwise
        SANDBOX_PORT=str(port),
        REDIS_PREFIX=f"bench-{name}-{uuid.uuid4().hex[:8]}",
        **env,
    )
    for setting in ("SMARTSHEET_ACCESS_TOKEN", "SMARTSHEET_API_BASE", "AZURE_OPENAI_API_KEY"):
        os.environ.pop(setting, None)
    if "DATABASE_URL" not in os.environ:
        db_file = ROOT / "var" / f"benchmark-{name}.sqlite3"
        db_file.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{db_file}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # As scripts/run.py does: whitenoise warns on every request path while STATIC_ROOT is missing.
    static_root = Path(os.environ.get("STATIC_ROOT", ROOT / "var" / "staticfiles"))
    static_root.mkdir(parents=True, exist_ok=True)
    try:
        with sandbox_running(port) as url:
            run(url)
    finally:
        _forget_redis_keys()


def _forget_redis_keys() -> None:
    import redis

    try:
        client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        keys = list(client.scan_iter(match=f"{os.environ['REDIS_PREFIX']}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:  # best effort after a benchmark
        return
