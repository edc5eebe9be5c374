"""`make run`: prepare the database, then run every process of the workbench until Ctrl-C.

Processes (multiplexed by honcho; when one stops, all stop): web (daphne), worker (Celery, both
queues), beat, the sandbox when no real credentials are configured, and a private redis-server
when nothing answers at REDIS_URL. Once the web server answers, a setup thread mirrors the demo
sheets and registers webhooks so outside changes show up without a manual step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WEB_HOST = os.environ.get("WEB_HOST", "127.0.0.1")
WEB_PORT = os.environ.get("WEB_PORT", "8000")


def say(message: str) -> None:
    print(f"\033[1m[run]\033[0m {message}", flush=True)


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=check)


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (our own loopback URL)
            return response.status < 500
    except (urllib.error.URLError, OSError):
        return False


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def setup_after_start(settings, web_url: str) -> None:
    """Mirror the sheets and register webhooks once the sandbox and the web server answer."""
    if settings.SMARTSHEET_SANDBOX and not wait_for(
        lambda: http_answers(f"{settings.SANDBOX_URL}/_sandbox/config"), 60
    ):
        say("the sandbox did not answer within 60 s; see its lines above.")
        return
    if not wait_for(lambda: http_answers(f"{web_url}/healthz"), 60):
        say("the web server did not answer within 60 s; see its lines above.")
        return
    from django.core.management import get_commands

    commands = get_commands()
    if "sync_sheets" in commands:
        say("mirroring sheets (first start takes a few seconds) …")
        manage("sync_sheets", "--all", check=False)
    if "register_webhooks" in commands:
        manage("register_webhooks", check=False)
    say(f"ready: open {web_url}/ and log in as {settings.DEMO_USER} / {settings.DEMO_PASSWORD}")


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    (ROOT / "var").mkdir(exist_ok=True)
    import django

    django.setup()
    from django.conf import settings
    from honcho.manager import Manager

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns if missing

    manager = Manager()

    if not redis_answers(settings.REDIS_URL):
        server = shutil.which("redis-server")
        if server is None:
            say(
                f"nothing answers at REDIS_URL={settings.REDIS_URL} and redis-server is not "
                "installed. Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; "
                "macOS: `brew install redis`) or point REDIS_URL at a running Redis."
            )
            return 1
        port = urlparse(settings.REDIS_URL).port or 6379
        say(f"nothing answers at {settings.REDIS_URL}: starting a private redis-server on {port}")
        manager.add_process(
            "redis",
            f"{server} --port {port} --bind 127.0.0.1 --save '' --appendonly no",
        )

    say("migrating the database …")
    manage("migrate", "--no-input", "-v", "0")
    manage("ensure_demo_user")

    if settings.SANDBOX_MODE:
        say(f"no real credentials configured: starting the sandbox at {settings.SANDBOX_URL}")
        manager.add_process(
            "sandbox",
            f"{PYTHON} manage.py sandbox --host {settings.SANDBOX_HOST} "
            f"--port {settings.SANDBOX_PORT} --seed demo",
        )
    manager.add_process(
        "web", f"{PYTHON} -m daphne -b {WEB_HOST} -p {WEB_PORT} config.asgi:application"
    )
    worker = (
        f"{PYTHON} -m celery -A config worker -Q interactive,bulk -c 2 -l INFO "
        "--without-gossip --without-mingle"
    )
    if settings.SANDBOX_MODE:
        # The worker checks the AI deployments as it starts: let the sandbox come up first.
        worker = f"{PYTHON} scripts/run.py --after {settings.SANDBOX_URL}/_sandbox/config {worker}"
    manager.add_process("worker", worker)
    schedule = settings.CELERY_BEAT_SCHEDULE_FILENAME
    manager.add_process("beat", f"{PYTHON} -m celery -A config beat -l INFO -s {schedule}")

    web_url = f"http://{WEB_HOST}:{WEB_PORT}"
    threading.Thread(target=setup_after_start, args=(settings, web_url), daemon=True).start()
    say(f"starting; the app will be at {web_url}/ (Ctrl-C stops everything)")
    manager.loop()
    return manager.returncode or 0


def after(url: str, command: list[str]) -> int:
    """`run.py --after URL CMD …`: run CMD once URL answers (or after 60 s, whichever first)."""
    wait_for(lambda: http_answers(url), 60)
    os.execvp(command[0], command)  # noqa: S606 (our own command line, from main())


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--after":
        sys.exit(after(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
