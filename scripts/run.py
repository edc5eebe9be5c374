"""`make run`: prepare the database, then run every process of the workbench until Ctrl-C.

Processes (multiplexed by honcho; when one stops, all stop): web (daphne), worker (Celery, both
queues), beat, the sandbox in sandbox mode (SANDBOX=true unless the environment or .env says
otherwise), and a private redis-server when nothing answers at REDIS_URL. Every port is checked
before anything else happens, so a start that cannot succeed touches no database (its own or
another instance's). Once the web server answers, a setup thread mirrors the demo sheets and
registers webhooks so outside changes show up without a manual step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.processes import ProcessFailed, port_in_use, process_wait  # noqa: E402

PYTHON = sys.executable


def say(message: str) -> None:
    print(f"\033[1m[run]\033[0m {message}", flush=True)


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=check)


def redis_answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        with client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def _free_port_after(host: str, port: int) -> int | None:
    return next((p for p in range(port + 1, port + 50) if not port_in_use(host, p)), None)


def ports_taken(settings, *, redis_port: int | None) -> list[str]:
    """A sentence per port this start needs that something else already listens on."""
    wanted = [("WEB_PORT", settings.WEB_HOST, settings.WEB_PORT, "the web server")]
    if settings.SANDBOX_MODE:
        wanted.append(("SANDBOX_PORT", settings.SANDBOX_HOST, settings.SANDBOX_PORT, "the sandbox"))
    if redis_port is not None:
        wanted.append(("REDIS_URL", "127.0.0.1", redis_port, "a private redis-server"))
    problems = []
    for setting, host, port, what in wanted:
        if not port_in_use(host, port):
            continue
        spare = _free_port_after(host, port) or port + 1
        if setting == "REDIS_URL":
            fix = (
                f"nothing there answers as Redis. Point REDIS_URL at a running Redis, or at a "
                f"free port for a private one: REDIS_URL=redis://127.0.0.1:{spare}/0 make run"
            )
        else:
            fix = (
                "stop what runs there (another `make run`?) or use another port: "
                f"{setting}={spare} make run"
            )
        problems.append(f"port {port} ({setting}) is already in use, so {what} cannot start: {fix}")
    return problems


class _SetupSteps:
    """The commands run once the servers answer. Each in its own session, so the terminal's
    Ctrl-C does not interrupt one mid-import (a KeyboardInterrupt traceback in the log); stop()
    ends the one running and starts no other, before the servers it talks to go away."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def manage(self, *args: str) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._proc = subprocess.Popen(
                [PYTHON, "manage.py", *args], cwd=ROOT, start_new_session=True
            )
        self._proc.wait()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()


setup_steps = _SetupSteps()


def setup_after_start(settings, web_url: str) -> None:
    """Mirror the sheets and register webhooks once the sandbox and the web server answer."""
    try:
        if settings.SMARTSHEET_SANDBOX:
            process_wait(f"{settings.SANDBOX_URL}/_sandbox/config", timeout=60, what="the sandbox")
        process_wait(f"{web_url}/healthz", timeout=60, what="the web server")
    except ProcessFailed as exc:
        say(f"{exc}; see its lines above.")
        return
    from django.core.management import get_commands

    commands = get_commands()
    if "sync_sheets" in commands:
        say("mirroring sheets (first start takes a few seconds) …")
        setup_steps.manage("sync_sheets", "--all")
    if "register_webhooks" in commands:
        setup_steps.manage("register_webhooks")
    if setup_steps.stopped:
        return
    say(f"ready: open {web_url}/ and log in as {settings.DEMO_USER} / {settings.DEMO_PASSWORD}")


def main() -> int:
    os.chdir(ROOT)
    import environ

    # .env may say SANDBOX=false (real services only); otherwise `make run` is the sandbox demo.
    environ.Env.read_env(ROOT / ".env", overwrite=False)
    os.environ.setdefault("SANDBOX", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        say(str(exc))
        return 1
    from django.conf import settings
    from honcho.manager import Manager

    start_redis = not redis_answers(settings.REDIS_URL)
    redis_port = (urlparse(settings.REDIS_URL).port or 6379) if start_redis else None
    taken = ports_taken(settings, redis_port=redis_port)
    for problem in taken:
        say(problem)
    if taken:
        return 1

    (ROOT / "var").mkdir(exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns if missing
    manager = Manager()

    if start_redis:
        server = shutil.which("redis-server")
        if server is None:
            say(
                f"nothing answers at REDIS_URL={settings.REDIS_URL} and redis-server is not "
                "installed. Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; "
                "macOS: `brew install redis`) or point REDIS_URL at a running Redis."
            )
            return 1
        say(f"nothing answers at {settings.REDIS_URL}: starting a private redis-server")
        manager.add_process(
            "redis",
            f"{server} --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no",
        )

    say("migrating the database …")
    manage("migrate", "--no-input", "-v", "0")
    manage("ensure_demo_user")

    if settings.SANDBOX_MODE:
        services = " and ".join(
            name
            for name, on in (
                ("Smartsheet", settings.SMARTSHEET_SANDBOX),
                ("Azure OpenAI", settings.AZURE_OPENAI_SANDBOX),
            )
            if on
        )
        say(f"sandbox mode: {services} on the sandbox at {settings.SANDBOX_URL}")
        manager.add_process(
            "sandbox",
            f"{PYTHON} manage.py sandbox --host {settings.SANDBOX_HOST} "
            f"--port {settings.SANDBOX_PORT} --seed demo",
        )
    manager.add_process(
        "web",
        f"{PYTHON} -m daphne -b {settings.WEB_HOST} -p {settings.WEB_PORT} config.asgi:application",
    )
    worker = (
        f"{PYTHON} -m celery -A config worker -Q interactive,bulk -c 2 -l INFO "
        "--without-gossip --without-mingle"
    )
    if settings.AZURE_OPENAI_SANDBOX:
        # The worker checks the AI deployments as it starts: let the sandbox come up first.
        worker = f"{PYTHON} scripts/run.py --after {settings.SANDBOX_URL}/_sandbox/config {worker}"
    manager.add_process("worker", worker)
    schedule = settings.CELERY_BEAT_SCHEDULE_FILENAME
    manager.add_process("beat", f"{PYTHON} -m celery -A config beat -l INFO -s {schedule}")

    # Ctrl-C, or a process that stopped: the setup commands end first.
    terminate = manager.terminate

    def terminate_after_setup() -> None:
        setup_steps.stop()
        terminate()

    manager.terminate = terminate_after_setup
    web_url = f"http://{settings.WEB_HOST}:{settings.WEB_PORT}"
    threading.Thread(target=setup_after_start, args=(settings, web_url), daemon=True).start()
    say(f"starting; the app will be at {web_url}/ (Ctrl-C stops everything)")
    manager.loop()
    return manager.returncode or 0


def after(url: str, command: list[str]) -> int:
    """`run.py --after URL CMD …`: run CMD once URL answers (or after 60 s, whichever first)."""
    # CMD reports an outage itself, in its own words.
    with contextlib.suppress(ProcessFailed):
        process_wait(url, timeout=60, what=url)
    os.execvp(command[0], command)  # noqa: S606 (our own command line, from main())


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--after":
        sys.exit(after(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
