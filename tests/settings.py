"""Settings for the test suite and for the servers it starts (daphne, Celery, the sandbox).

The first process to import this picks free ports and a Redis database and writes them to the
environment, so every subprocess it starts inherits the same values and they all agree.
"""

from __future__ import annotations

import os
import socket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Each test process (the plain pytest process, or each xdist worker) picks its own ports, Redis
# prefix and database once; the servers it starts inherit them through the environment and see
# the same owner, so they keep them.
_OWNER = os.environ.get("PYTEST_XDIST_WORKER", "main")
if os.environ.get("WORKBENCH_TEST_OWNER") != _OWNER:
    os.environ["WORKBENCH_TEST_OWNER"] = _OWNER
    os.environ["WORKBENCH_TEST_DAPHNE_PORT"] = str(_free_port())
    os.environ["SANDBOX_PORT"] = str(_free_port())
    # Its own prefix keeps its Celery queues, limiters and breakers apart from other runs.
    os.environ["REDIS_PREFIX"] = f"wbtest{os.getpid()}"
    os.environ["WORKBENCH_TEST_DB"] = f"test_workbench_{os.getpid()}"
# Database 15 keeps the suite away from a `make run` on the same Redis.
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Tests always talk to the sandbox, never to real services, whatever the shell exports.
os.environ["SANDBOX"] = "true"
for name in (
    "SMARTSHEET_ACCESS_TOKEN",
    "AZURE_OPENAI_API_KEY",
    "SMARTSHEET_API_BASE",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_FALLBACK_DEPLOYMENT",
    "AZURE_OPENAI_DEPLOYMENTS",
):
    os.environ.pop(name, None)

from config.settings import *  # noqa: E402, F403
from config.settings import BASE_DIR, DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
DEBUG = False
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Browser tests need a file the daphne subprocess can open too.
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / "var" / f"{os.environ['WORKBENCH_TEST_DB']}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": os.environ["WORKBENCH_TEST_DB"]}

# A server started by the suite (daphne, a Celery worker) must use the test database, which the
# suite has already created and migrated.
if os.environ.get("WORKBENCH_USE_TEST_DB") == "1":
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]
    if "PYTEST_XDIST_WORKER" in os.environ:  # pytest-django suffixes each worker's database
        DATABASES["default"]["NAME"] += f"_{os.environ['PYTEST_XDIST_WORKER']}"

# Beat's schedule is dropped unless a test starts beat on purpose (tests/system).
if os.environ.get("WORKBENCH_TEST_BEAT") != "1":
    CELERY_BEAT_SCHEDULE = {}
