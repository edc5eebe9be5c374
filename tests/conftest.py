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
from pathlib import Path

import httpx
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# CI sets this: a missing PostgreSQL, Redis or Chromium fails the run instead of skipping.
REQUIRE_SERVICES = os.environ.get("WORKBENCH_REQUIRE_SERVICES") == "1"

pytest_plugins = ["tests.plugins.sandbox", "tests.plugins.private_redis"]


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


def run_in_thread(fn, *args, **kwargs):
    """Run fn in a fresh thread and return its result (or raise its exception).

    While a Playwright browser is open, this thread has a running event loop, so async_to_sync
    and asyncio.run refuse to run here.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A real daphne (HTTP + WebSocket) serving config.asgi on the test database.

    Tests that create data the server must see need `@pytest.mark.django_db(transaction=True)`.
    """
    port = os.environ["WORKBENCH_TEST_DAPHNE_PORT"]
    url = f"http://127.0.0.1:{port}"
    log = open(ROOT / "var" / "test-daphne.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port, "config.asgi:application"],
        cwd=ROOT,
        env=server_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited early; see {log.name}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout=30, what="daphne to answer /healthz")
        yield url
    finally:
        stop_process(proc)
        log.close()


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
    log = open(ROOT / "var" / "test-celery.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
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
        cwd=ROOT,
        env=server_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from config.celery import app

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited early; see {log.name}")
        return bool(app.control.ping(timeout=0.5))

    try:
        wait_until(ready, timeout=30, what="the Celery worker to answer a ping")
        yield proc
    finally:
        stop_process(proc)
        log.close()


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
