"""Shared fixtures: a small cast of users, a live daphne server, a real Chromium and Celery worker.

Servers are started once per test session as subprocesses on the test database (see
tests/settings.py for how ports and Redis are shared with them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from core.processes import process_start, process_stop

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# CI sets this: a missing PostgreSQL, Redis or Chromium fails the run instead of skipping.
REQUIRE_SERVICES = os.environ.get("WORKBENCH_REQUIRE_SERVICES") == "1"
# A WebsocketCommunicator connects within this (its default of 1 s is short on a busy machine,
# and a connect cut off by it leaves the consumer's database call orphaned).
SOCKET_CONNECT_TIMEOUT = 10
# How long a server may take to answer: on a loaded two-core machine a Django process can take
# half a minute to start. Waiting longer costs nothing when it starts sooner.
START_TIMEOUT = 120

pytest_plugins = [
    "tests.plugins.sandbox",
    "tests.plugins.private_redis",
    "tests.plugins.fast_flush",
]


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server the suite starts: same settings, same test database."""
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "WORKBENCH_USE_TEST_DB": "1", **extra})
    return env


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class BreakerClock:
    """The clock circuit breakers read (pybreaker's and core.breakers'), moved only by the test.

    A breaker half-opens `reset_timeout` after it opened; with the real clock a loaded machine
    can pass that edge between two lines of a test.
    """

    def __init__(self, monkeypatch) -> None:
        from datetime import UTC, datetime

        import pybreaker

        import core.breakers

        clock = self
        self.now = datetime.now(UTC)

        class FrozenDatetime(datetime):
            @classmethod
            def now(cls, tz=None):
                return clock.now if tz is not None else clock.now.replace(tzinfo=None)

        monkeypatch.setattr(pybreaker, "datetime", FrozenDatetime)
        monkeypatch.setattr(core.breakers, "datetime", FrozenDatetime)

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@pytest.fixture
def breaker_clock(monkeypatch) -> BreakerClock:
    return BreakerClock(monkeypatch)


def run_in_thread(fn, *args, **kwargs):
    """Run fn in a fresh thread and return its result (or raise its exception).

    While a Playwright browser is open, this thread has a running event loop, so async_to_sync
    and asyncio.run refuse to run here.

    The thread is a daemon joined without a timeout: when pytest-timeout's alarm interrupts the
    join, the test fails with its stack instead of waiting on (or, at exit, for) a hung thread.
    """
    import threading

    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="run_in_thread", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --- Users ------------------------------------------------------------------------------------


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "carol", "carol@example.com", "carol-password", is_staff=True, is_superuser=True
    )


# --- Live daphne server -----------------------------------------------------------------------


def server_log_path(name: str = "daphne") -> Path:
    """Each test process (xdist worker) logs its servers to files of its own."""
    return ROOT / "var" / f"test-{name}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"


@contextmanager
def daphne_server(port: int | str, log_path: Path, **env: str) -> Iterator[str]:
    """A real daphne (HTTP + WebSocket) serving config.asgi on the test database."""
    # Imported here: importing a plugin before pytest_plugins registers it keeps its asserts plain.
    from tests.plugins.sandbox import url_answers

    url = f"http://127.0.0.1:{port}"
    proc = process_start(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        ready=lambda: url_answers(f"{url}/healthz"),
        log=log_path,
        timeout=START_TIMEOUT,
        env=server_env(**env),
        what="daphne",
    )
    try:
        yield url
    finally:
        process_stop(proc)


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The session's daphne; its log is `server_log_path()`.

    Tests that create data the server must see need `@pytest.mark.django_db(transaction=True)`.
    """
    with daphne_server(os.environ["WORKBENCH_TEST_DAPHNE_PORT"], server_log_path()) as url:
        yield url


# --- Browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium per test module (never a downloaded browser).

    Not per session: Playwright's event loop runs in this thread while the browser is open, and
    every later test in the process that calls async_to_sync (a sync announcing a sheet) would
    fail with "You cannot use AsyncToSync in the same thread as an async event loop"."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`."
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright runs an event loop in this thread; the ORM calls tests make beside it are safe
    # because they are plain synchronous code in the same thread.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_server_url):
    context = browser.new_context(base_url=live_server_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def login(page, live_server_url, client):
    """Log a user into the browser page through a session cookie (faster than the form)."""

    def _login(user):
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server_url}]
        )
        return page

    return _login


# --- Celery -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real Celery worker process consuming both queues from the real Redis broker."""
    from config.celery import app

    proc = process_start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "interactive,bulk",
            "-P",
            "threads",
            "-c",
            "4",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ],
        ready=lambda: app.control.ping(timeout=0.5),
        log=server_log_path("celery"),
        timeout=START_TIMEOUT,
        env=server_env(),
        what="the Celery worker",
    )
    try:
        yield proc
    finally:
        process_stop(proc)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(scope="session", autouse=True)
def _forget_redis_keys_after_the_session():
    """The suite's Redis keys all carry its own prefix; drop them when it ends."""
    yield
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.REDIS_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)


# --- Scheduling -------------------------------------------------------------------------------

# Seconds a module took alone (-n 0, PostgreSQL, a quiet two-core machine): only used to hand the
# long modules to the xdist workers first (see pytest_collection_modifyitems). A module not named
# here is estimated from what its tests start; a stale figure only costs some balance.
_MODULE_SECONDS = {
    "tests/browser/test_live.py": 36,
    "tests/system/test_redis_outage.py": 23,
    "tests/browser/test_grid.py": 22,
    "tests/browser/test_jobs.py": 19,
    "tests/jobs/test_worker.py": 19,
    "tests/jobs/test_quota.py": 19,
    "tests/browser/test_chat.py": 15,
    "tests/core/test_celery_broker_outage.py": 14,
    "tests/jobs/test_run.py": 10,
    "tests/browser/test_grid_jobs.py": 10,
    "tests/sheets/test_sync_locks.py": 10,
    "tests/jobs/test_admin_and_command.py": 10,
    "tests/browser/test_sheets_list.py": 9,
    "tests/core/test_run.py": 9,
    "tests/browser/test_chat_demo.py": 8,
    "tests/jobs/test_plan.py": 8,
    "tests/ai/test_client.py": 7,
    "tests/browser/test_grid_rows.py": 7,
    "tests/sandbox/test_webhooks.py": 6.5,
    "tests/sheets/test_services_cells.py": 6,
    "tests/sheets/test_webhooks.py": 6,
}
# Otherwise: rough seconds a test costs by the most expensive thing it starts.
_FIXTURE_SECONDS = {
    "stack": 12.0,  # tests/system: daphne, worker and beat on a private Redis
    "jobs_worker": 10.0,
    "workers": 8.0,  # Celery worker subprocesses started by the test
    "doomed_worker": 8.0,
    "celery_worker": 4.0,
    "page": 3.0,  # Chromium against the live daphne
    "private_redis": 2.0,
    "live_server_url": 1.0,
}
_TEST_SECONDS = 0.25


def _module(item) -> str:
    return item.nodeid.split("::", 1)[0]


def _estimated_seconds(item) -> float:
    names = set(getattr(item, "fixturenames", ()))
    return max(
        (seconds for name, seconds in _FIXTURE_SECONDS.items() if name in names),
        default=_TEST_SECONDS,
    )


def pytest_collection_modifyitems(config, items):
    """Longest modules first, each module's tests in their order.

    With `--dist loadfile --no-loadscope-reorder` (pyproject.toml) each module runs on one
    worker (a browser module starts one Chromium, not one per worker) and modules are handed out
    in this order: the long ones start first instead of one starting last while the other worker
    idles.
    """
    seconds: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        module = _module(item)
        first_seen.setdefault(module, index)
        seconds[module] = seconds.get(module, 0.0) + _estimated_seconds(item)
    seconds.update({m: s for m, s in _MODULE_SECONDS.items() if m in seconds})
    items.sort(key=lambda item: (-seconds[_module(item)], first_seen[_module(item)]))
