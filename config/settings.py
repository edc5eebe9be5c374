"""One env-driven settings file. Every knob is an environment variable (or a line in `.env`).

Production fails closed. Sandbox mode is explicit: `SANDBOX=true` (set by `make run`, the tests and
the compose sandbox profile) points each service that has no credentials at the sandbox
(`manage.py sandbox`), which stands in for Smartsheet and Azure OpenAI on loopback. Without it,
the app refuses to start until both services have credentials; and unless DEBUG or SANDBOX is on,
it also refuses a weak SECRET_KEY and turns the https protections on.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# An optional .env beside manage.py; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SANDBOX = env.bool("SANDBOX", default=False)
# A developer's machine or the sandbox demo, served over plain http on loopback: local defaults.
# Anything else is production: strict defaults, and the checks below refuse to start.
_LOCAL = DEBUG or SANDBOX
# Why the app refuses to start; collected so one message lists everything to fix.
_START_PROBLEMS: list[str] = []

_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
# The same bar as Django's deploy check (security.W009).
if not _LOCAL and (
    SECRET_KEY == _DEV_SECRET_KEY
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or SECRET_KEY.startswith("django-insecure-")
):
    _START_PROBLEMS.append(
        "SECRET_KEY is "
        + ("not set" if SECRET_KEY == _DEV_SECRET_KEY else "too weak")
        + ": set it to a random value of 50 characters or more, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "template_partials",
    "core",
    "sheets",
    "ai",
    "jobs",
    "chat",
    # The stand-ins (`manage.py sandbox`) exist only in sandbox mode.
    *(["sandbox"] if SANDBOX else []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page requires a logged-in user unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.workbench",
                "ai.context_processors.ai_status",
            ],
        },
    },
]

# --- Security: https only in production; locally (DEBUG or SANDBOX) plain http on loopback ---
# Each can be switched by the variable of the same name.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not _LOCAL)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not _LOCAL)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not _LOCAL)
# Health probes from a load balancer or compose come over plain http from inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if _LOCAL else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not _LOCAL)
# Asking browsers to hard-code the domain as https-only is the domain owner's call, not a default.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Behind a proxy that terminates https and sets X-Forwarded-Proto (and strips it from clients).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("SECURE_PROXY_SSL_HEADER", default=not _LOCAL)
    else None
)

# --- Database ------------------------------------------------------------------------------
# SQLite (WAL, so the web process, the worker and beat can share it) unless DATABASE_URL is set.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer, cache ------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Keeps several checkouts (or the test suite) apart on one Redis.
REDIS_PREFIX = env.str("REDIS_PREFIX", default="workbench")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# redis-py 8 gives up on a read after 5 s by default, exactly as long as channels-redis blocks in
# BZPOPMIN waiting for a message (5 s), so every idle WebSocket died with "Timeout reading from
# …" and reconnected. The read timeout must outlast that wait; a finite one still notices a Redis
# that vanished without closing its connections. The retry reconnects a pooled connection that a
# Redis restart left dead, so the first socket after the restart works instead of failing.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 15,
                    "socket_connect_timeout": 2,
                    "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
                }
            ],
            "prefix": f"{REDIS_PREFIX}:asgi",
        },
    }
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Job priorities (0 high, 3 normal, 6 low) use the Redis transport's default priority steps
# (0, 3, 6, 9): one list per step, served lowest number first.
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_PREFIX}:celery:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_PREFIX}:celery:"}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
# Two queues: `interactive` (chat turns: short, a person is waiting) and `bulk` (AI jobs, syncs).
CELERY_TASK_DEFAULT_QUEUE = "bulk"
CELERY_TASK_ROUTES = {
    "chat.*": {"queue": "interactive"},
    "core.*": {"queue": "interactive"},
    # Edits a person made while Smartsheet was away: not behind a long job or sync.
    "sheets.tasks.pending_edits_apply": {"queue": "interactive"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=16 * 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's consumer with a guard: a Redis outage while the worker holds an unacknowledged
# message no longer stops the worker (see config/celery.py).
CELERY_WORKER_CONSUMER = "config.celery:Consumer"
# Tasks are idempotent and acks_late: on a broker loss a running one is stopped and delivered
# again, rather than finishing after its message was handed back (Celery 6's default; unset,
# Celery warns on every broker loss).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "var" / "celerybeat-schedule")
)

# --- Outside services: Smartsheet and Azure OpenAI (sandbox mode fills in what is missing) ----
SANDBOX_HOST = env.str("SANDBOX_HOST", default="127.0.0.1")
SANDBOX_PORT = env.int("SANDBOX_PORT", default=8765)
SANDBOX_URL = f"http://{SANDBOX_HOST}:{SANDBOX_PORT}"
# Where `make run` serves the app; the default webhook callback follows it.
WEB_HOST = env.str("WEB_HOST", default="127.0.0.1")
WEB_PORT = env.int("WEB_PORT", default=8000)

# Each service uses its credentials when given, so SANDBOX=true with a real Smartsheet token
# means real Smartsheet and the sandbox's Azure OpenAI.
SMARTSHEET_ACCESS_TOKEN = env.str("SMARTSHEET_ACCESS_TOKEN", default="")
SMARTSHEET_SANDBOX = SANDBOX and not SMARTSHEET_ACCESS_TOKEN
if SMARTSHEET_SANDBOX:
    SMARTSHEET_ACCESS_TOKEN = "sandbox-token"
elif not SMARTSHEET_ACCESS_TOKEN:
    _START_PROBLEMS.append(
        "SMARTSHEET_ACCESS_TOKEN is not set: create one in Smartsheet (Account → Apps & "
        "Integrations → API Access)."
    )
SMARTSHEET_API_BASE = env.str(
    "SMARTSHEET_API_BASE",
    default=f"{SANDBOX_URL}/2.0" if SMARTSHEET_SANDBOX else "https://api.smartsheet.com/2.0",
)

AZURE_OPENAI_API_KEY = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_SANDBOX = SANDBOX and not AZURE_OPENAI_API_KEY and not AZURE_OPENAI_ENDPOINT
if AZURE_OPENAI_SANDBOX:
    AZURE_OPENAI_API_KEY = "sandbox-key"
    AZURE_OPENAI_ENDPOINT = SANDBOX_URL
elif not AZURE_OPENAI_API_KEY or not AZURE_OPENAI_ENDPOINT:
    _missing = [
        name
        for name, value in (
            ("AZURE_OPENAI_API_KEY", AZURE_OPENAI_API_KEY),
            ("AZURE_OPENAI_ENDPOINT", AZURE_OPENAI_ENDPOINT),
        )
        if not value
    ]
    _START_PROBLEMS.append(
        f"{' and '.join(_missing)} {'is' if len(_missing) == 1 else 'are'} not set: copy the "
        "key and the endpoint (https://<resource>.openai.azure.com) from the Azure portal "
        "(the resource → Keys and Endpoint)."
    )
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="2024-10-21")
AZURE_OPENAI_DEPLOYMENT = env.str("AZURE_OPENAI_DEPLOYMENT", default="gpt-4o-mini")
AZURE_OPENAI_FALLBACK_DEPLOYMENT = env.str("AZURE_OPENAI_FALLBACK_DEPLOYMENT", default="")

# Some service runs on the sandbox (pages show a banner saying which).
SANDBOX_MODE = SMARTSHEET_SANDBOX or AZURE_OPENAI_SANDBOX

WEBHOOK_CALLBACK_URL = env.str(
    "WEBHOOK_CALLBACK_URL", default=f"http://127.0.0.1:{WEB_PORT}/webhooks/smartsheet/"
)

if _START_PROBLEMS:
    _mode = (
        "SANDBOX=true, but"
        if SANDBOX
        else "Not in sandbox mode (SANDBOX=true), and DEBUG is off, so"
        if not DEBUG
        else "Not in sandbox mode (SANDBOX=true), so"
    )
    raise ImproperlyConfigured(
        f"The workbench cannot start. {_mode} these settings are missing or unsafe:\n"
        + "\n".join(f"  - {problem}" for problem in _START_PROBLEMS)
        + "\nSet them in the environment or in .env beside manage.py"
        + ("." if SANDBOX else ", or set SANDBOX=true to try the app on the sandbox.")
    )

# --- Smartsheet client and mirror (sheets/) ---------------------------------------------------
# Marks our own writes in webhook events (`changeAgent`).
SMARTSHEET_CHANGE_AGENT = env.str("SMARTSHEET_CHANGE_AGENT", default="smartsheet-ai-workbench")
# Seconds per request (the SDK sets no timeout at all).
SMARTSHEET_TIMEOUT = env.float("SMARTSHEET_TIMEOUT", default=30.0)
# Shared by every process per token; Smartsheet allows 300/min (cell history costs 10).
SMARTSHEET_RATE_LIMIT_PER_MINUTE = env.int("SMARTSHEET_RATE_LIMIT_PER_MINUTE", default=300)
SMARTSHEET_RATE_LIMIT_WINDOW = env.float("SMARTSHEET_RATE_LIMIT_WINDOW", default=60.0)
SMARTSHEET_RATE_LIMIT_MAX_WAIT = env.float("SMARTSHEET_RATE_LIMIT_MAX_WAIT", default=120.0)
# After a 429 (no Retry-After from Smartsheet) every process pauses this long.
SMARTSHEET_RATE_LIMIT_PAUSE = env.float("SMARTSHEET_RATE_LIMIT_PAUSE", default=5.0)
SMARTSHEET_RETRY_MAX_TRIES = env.int("SMARTSHEET_RETRY_MAX_TRIES", default=5)
SMARTSHEET_RETRY_MAX_TIME = env.float("SMARTSHEET_RETRY_MAX_TIME", default=60.0)
SMARTSHEET_RETRY_FACTOR = env.float("SMARTSHEET_RETRY_FACTOR", default=1.0)
SMARTSHEET_RETRY_MAX_DELAY = env.float("SMARTSHEET_RETRY_MAX_DELAY", default=20.0)
SMARTSHEET_BREAKER_FAIL_MAX = env.int("SMARTSHEET_BREAKER_FAIL_MAX", default=5)
SMARTSHEET_BREAKER_RESET_TIMEOUT = env.int("SMARTSHEET_BREAKER_RESET_TIMEOUT", default=30)
SMARTSHEET_WRITE_LOCK_TIMEOUT = env.int("SMARTSHEET_WRITE_LOCK_TIMEOUT", default=120)
# Rows per GET during a full sync (bounds memory on 20,000-row sheets).
SHEETS_SYNC_PAGE_SIZE = env.int("SHEETS_SYNC_PAGE_SIZE", default=1000)
# rowsModifiedSince looks back this much further than the last sync, for clock skew.
SHEETS_SYNC_CLOCK_SKEW = env.int("SHEETS_SYNC_CLOCK_SKEW", default=120)
# Webhook bursts within this many seconds coalesce into one sync.
SHEETS_SYNC_DEBOUNCE = env.float("SHEETS_SYNC_DEBOUNCE", default=2.0)
SHEETS_POLL_INTERVAL = env.int("SHEETS_POLL_INTERVAL", default=60)
# Sheets with a live webhook are still checked this often (webhooks arrive late or get lost).
SHEETS_SAFETY_POLL_INTERVAL = env.int("SHEETS_SAFETY_POLL_INTERVAL", default=300)
# A sync's lock expires this soon after its holder dies (a heartbeat renews it meanwhile).
SHEETS_SYNC_LOCK_TTL = env.int("SHEETS_SYNC_LOCK_TTL", default=30)
# A sync that finds its sheet busy comes back after this many seconds instead of waiting.
SHEETS_SYNC_BUSY_RETRY = env.float("SHEETS_SYNC_BUSY_RETRY", default=10.0)
# A scheduled sync's "pending" mark outlives its countdown by this much (a lost task then
# blocks new requests no longer).
SHEETS_SYNC_PENDING_GRACE = env.float("SHEETS_SYNC_PENDING_GRACE", default=30.0)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1_000_000)
WEBHOOK_NONCE_TTL = env.int("WEBHOOK_NONCE_TTL", default=7 * 24 * 3600)
# Refused callbacks: at most one record per kind per sample period (the rest are counted in
# Redis), records dropped after so many days.
WEBHOOK_REJECTION_SAMPLE_SECONDS = env.int("WEBHOOK_REJECTION_SAMPLE_SECONDS", default=60)
WEBHOOK_REJECTION_DAYS = env.int("WEBHOOK_REJECTION_DAYS", default=30)
# Syncs whose worker died are looked for this often (a cheap check, no Smartsheet call), so one
# is taken up within SHEETS_SYNC_LOCK_TTL + SHEETS_RESUME_INTERVAL seconds.
SHEETS_RESUME_INTERVAL = env.int("SHEETS_RESUME_INTERVAL", default=20)
CELERY_BEAT_SCHEDULE["sheets-poll"] = {
    "task": "sheets.tasks.sheets_poll",
    "schedule": float(SHEETS_POLL_INTERVAL),
}
CELERY_BEAT_SCHEDULE["sheets-resume"] = {
    "task": "sheets.tasks.syncs_resume",
    "schedule": float(SHEETS_RESUME_INTERVAL),
}
# Cell edits kept while Smartsheet was unavailable are retried this often (seconds).
SHEETS_PENDING_EDITS_INTERVAL = env.int("SHEETS_PENDING_EDITS_INTERVAL", default=60)
CELERY_BEAT_SCHEDULE["sheets-pending-edits"] = {
    "task": "sheets.tasks.pending_edits_apply",
    "schedule": float(SHEETS_PENDING_EDITS_INTERVAL),
}

# --- Azure OpenAI client (ai/) ----------------------------------------------------------------
# Every deployment the app may call, as JSON keyed by deployment name (the name given in Azure,
# not the model's): its base model (token counting), the quota granted to it (requests and tokens
# per minute) and its price in USD per 1,000 tokens. The defaults describe the sandbox.
_AZURE_OPENAI_DEPLOYMENT_KEYS = ("model", "rpm", "tpm", "input_per_1k", "output_per_1k")
_AZURE_OPENAI_SANDBOX_DEPLOYMENTS = {
    "gpt-4o-mini": {"model": "gpt-4o-mini", "rpm": 600, "tpm": 600_000,
                    "input_per_1k": "0.00015", "output_per_1k": "0.0006"},
    "gpt-4o": {"model": "gpt-4o", "rpm": 600, "tpm": 600_000,
               "input_per_1k": "0.0025", "output_per_1k": "0.01"},
}  # fmt: skip


def _parse_azure_openai_deployments(raw: str, primary: str, fallback: str) -> dict[str, dict]:
    """AZURE_OPENAI_DEPLOYMENTS checked: a bad value stops the start with what to fix."""
    import json
    from decimal import Decimal, InvalidOperation

    example = (
        'AZURE_OPENAI_DEPLOYMENTS=\'{"my-gpt4o-mini": {"model": "gpt-4o-mini", "rpm": 600, '
        '"tpm": 100000, "input_per_1k": "0.00015", "output_per_1k": "0.0006"}}\''
    )
    try:
        deployments = json.loads(raw) if raw.strip() else _AZURE_OPENAI_SANDBOX_DEPLOYMENTS
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(
            f"AZURE_OPENAI_DEPLOYMENTS is not valid JSON ({exc}). Expected e.g. {example}"
        ) from exc
    if not isinstance(deployments, dict) or not deployments:
        raise ImproperlyConfigured(
            f"AZURE_OPENAI_DEPLOYMENTS must be a JSON object, e.g. {example}"
        )
    parsed = {}
    for name, spec in deployments.items():
        where = f"AZURE_OPENAI_DEPLOYMENTS[{name!r}]"
        if not isinstance(spec, dict) or set(spec) != set(_AZURE_OPENAI_DEPLOYMENT_KEYS):
            raise ImproperlyConfigured(
                f"{where} must have exactly the keys {', '.join(_AZURE_OPENAI_DEPLOYMENT_KEYS)}; "
                f"got {spec!r}. Example: {example}"
            )
        for key in ("rpm", "tpm"):
            if not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 1:
                raise ImproperlyConfigured(
                    f"{where}.{key} must be a whole number ≥ 1 (the quota in Azure), "
                    f"not {spec[key]!r}"
                )
        try:
            prices = {k: Decimal(str(spec[k])) for k in ("input_per_1k", "output_per_1k")}
        except InvalidOperation:
            prices = {}
        if len(prices) != 2 or any(not p.is_finite() or p < 0 for p in prices.values()):
            raise ImproperlyConfigured(
                f"{where}: input_per_1k and output_per_1k must be prices ≥ 0 in USD per 1,000 "
                f'tokens, e.g. "0.00015"; got {spec["input_per_1k"]!r}, {spec["output_per_1k"]!r}'
            )
        if not isinstance(spec["model"], str) or not spec["model"].strip():
            raise ImproperlyConfigured(f"{where}.model must name the base model, e.g. gpt-4o-mini")
        parsed[name] = {**spec, **prices, "model": spec["model"].strip()}
    for setting, name in (
        ("AZURE_OPENAI_DEPLOYMENT", primary),
        ("AZURE_OPENAI_FALLBACK_DEPLOYMENT", fallback),
    ):
        if name and name not in parsed:
            raise ImproperlyConfigured(
                f"{setting}={name!r} is not described in AZURE_OPENAI_DEPLOYMENTS (which has "
                f"{', '.join(parsed)}). Add it, e.g. {example}"
            )
    return parsed


AZURE_OPENAI_DEPLOYMENTS = _parse_azure_openai_deployments(
    env.str("AZURE_OPENAI_DEPLOYMENTS", default=""),
    AZURE_OPENAI_DEPLOYMENT,
    AZURE_OPENAI_FALLBACK_DEPLOYMENT,
)
# Seconds to wait for a reply (connecting: 5 s).
AZURE_OPENAI_TIMEOUT = env.float("AZURE_OPENAI_TIMEOUT", default=60.0)
# Attempts per call (429, 408, 409, 5xx, timeouts), and the longest a call may wait in all, for
# the shared limiter, a retry-after or backoff, before it gives up with a retryable error.
AZURE_OPENAI_MAX_ATTEMPTS = env.int("AZURE_OPENAI_MAX_ATTEMPTS", default=5)
AZURE_OPENAI_MAX_WAIT = env.float("AZURE_OPENAI_MAX_WAIT", default=60.0)
# First backoff wait in seconds (doubling up to 8 s, full jitter) when no retry-after was sent.
AZURE_OPENAI_BACKOFF_BASE = env.float("AZURE_OPENAI_BACKOFF_BASE", default=0.5)
# Azure enforces RPM over short windows (rpm/6 per 10 s), so the limiter does too.
AZURE_OPENAI_RPM_WINDOW = env.float("AZURE_OPENAI_RPM_WINDOW", default=10.0)
# Per-deployment breaker: opens after this many outages in a row, tries again after the timeout.
AZURE_OPENAI_BREAKER_FAIL_MAX = env.int("AZURE_OPENAI_BREAKER_FAIL_MAX", default=5)
AZURE_OPENAI_BREAKER_RESET_TIMEOUT = env.float("AZURE_OPENAI_BREAKER_RESET_TIMEOUT", default=30.0)
for _name in (
    "AZURE_OPENAI_TIMEOUT",
    "AZURE_OPENAI_MAX_ATTEMPTS",
    "AZURE_OPENAI_MAX_WAIT",
    "AZURE_OPENAI_BACKOFF_BASE",
    "AZURE_OPENAI_RPM_WINDOW",
    "AZURE_OPENAI_BREAKER_FAIL_MAX",
    "AZURE_OPENAI_BREAKER_RESET_TIMEOUT",
):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be greater than 0, not {globals()[_name]}.")

# --- AI jobs (jobs/) ----------------------------------------------------------------------------
# Model calls one job keeps in flight (threads); the shared limiter paces them to the quota.
JOBS_MAX_IN_FLIGHT = env.int("JOBS_MAX_IN_FLIGHT", default=32)
# While a job of higher priority runs on the same deployment, others keep 1/N of their calls.
JOBS_YIELD_DIVISOR = env.int("JOBS_YIELD_DIVISOR", default=8)
# Answers are written once this many wait, or when the oldest has waited this long (a flush is
# 1 read + 1 write per 500 rows: at 1,000 rows, 3 Smartsheet calls per 1,000 rows; at the
# quota's pace of 100 rows/s the sheet shows progress every 10 s).
JOBS_FLUSH_ROWS = env.int("JOBS_FLUSH_ROWS", default=1000)
JOBS_FLUSH_SECONDS = env.float("JOBS_FLUSH_SECONDS", default=30.0)
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=1.0)
# A running job whose heartbeat is older than this is re-queued by the beat sweep.
JOBS_STALE_SECONDS = env.int("JOBS_STALE_SECONDS", default=60)
JOBS_SWEEP_INTERVAL = env.int("JOBS_SWEEP_INTERVAL", default=30)
# A job queued this long without a worker taking it has its task sent again (lost messages).
JOBS_QUEUED_RESEND_SECONDS = env.int("JOBS_QUEUED_RESEND_SECONDS", default=900)
# A run re-queues itself after this long (priorities, task time limits).
JOBS_SLICE_SECONDS = env.float("JOBS_SLICE_SECONDS", default=300.0)
JOBS_REQUEUE_DELAY = env.float("JOBS_REQUEUE_DELAY", default=30.0)
JOBS_ROW_MAX_ATTEMPTS = env.int("JOBS_ROW_MAX_ATTEMPTS", default=3)
# Stop when more than this share of the first N rows fail (a prompt or column mistake).
JOBS_EARLY_ROWS = env.int("JOBS_EARLY_ROWS", default=20)
JOBS_EARLY_FAILURE_RATIO = env.float("JOBS_EARLY_FAILURE_RATIO", default=0.5)
# max_tokens for free-text answers (short kinds use 60).
JOBS_MAX_TOKENS = env.int("JOBS_MAX_TOKENS", default=400)
CELERY_BEAT_SCHEDULE["jobs-sweep"] = {
    "task": "jobs.sweep",
    "schedule": float(JOBS_SWEEP_INTERVAL),
}

# --- Chat (chat/) ------------------------------------------------------------------------------
# Tokens of earlier conversation sent with each reply; older turns are condensed into a note.
CHAT_HISTORY_TOKENS = env.int("CHAT_HISTORY_TOKENS", default=6000)
# Model calls per reply that may ask for tools; the next call must answer in words.
CHAT_MAX_TOOL_ROUNDS = env.int("CHAT_MAX_TOOL_ROUNDS", default=6)
CHAT_MAX_TOKENS = env.int("CHAT_MAX_TOKENS", default=1200)
# Seconds between saves of a reply being written (what a reloaded page shows) and Stop checks.
CHAT_SAVE_INTERVAL = env.float("CHAT_SAVE_INTERVAL", default=0.25)

# --- Auth -------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Refuses locked-out attempts before any password is checked (core/login_throttle.py).
    "core.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed log-ins allowed per username from one address, and per address whatever the usernames,
# before that pair (or address) must wait LOGIN_LOCKOUT_SECONDS after its last failure.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=30)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
for _name in ("LOGIN_FAILURE_LIMIT", "LOGIN_FAILURE_LIMIT_PER_ADDRESS", "LOGIN_LOCKOUT_SECONDS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more, not {globals()[_name]}.")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The demo user (`demo` / `demo`) is created by `make run` unless DEMO_USER is set to empty.
DEMO_USER = env.str("DEMO_USER", default="demo")
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo")


# --- I18N, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles"))
# Serve straight from the source folders unless collectstatic was run (the Docker image runs it).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {"beat_send_failure": {"()": "core.logs.BeatSendFailure"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # A line per HTTP request (a job sends a hundred a second); their failures still show.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "celery.beat": {"filters": ["beat_send_failure"]},
    },
}
