#!/usr/bin/env bash
# `make test`: the whole suite on real services. Installs Chromium from Debian when missing (as
# root), picks PostgreSQL when it answers (else SQLite) and says which.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PY=.venv/bin/python

note() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

port_answers() {  # host port
  "$VENV_PY" - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# --- Chromium (Debian's package; never a downloaded browser) ---
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    note "installing Chromium from Debian (once, about 30 s) …"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    note "Chromium is not installed and this is not root: browser tests will be SKIPPED."
    note "Install it with: sudo apt-get install chromium"
  fi
fi
export CHROMIUM_PATH

# --- Compose CLI, to validate docker-compose.yml when the docker CLI is here without it ---
if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1 \
   && ! command -v docker-compose >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  note "installing docker-compose from Debian (to validate docker-compose.yml) …"
  [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null || note "could not install docker-compose; its test will be skipped"
fi

# --- Database ---
if [ -n "${DATABASE_URL:-}" ]; then
  note "database: DATABASE_URL (${DATABASE_URL%%://*})"
elif port_answers 127.0.0.1 5432; then
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/workbench
  note "database: PostgreSQL at 127.0.0.1:5432"
else
  note "database: SQLite (no DATABASE_URL and nothing answers at 127.0.0.1:5432)"
fi

# --- Redis ---
REDIS_TEST_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
if ! "$VENV_PY" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()" "$REDIS_TEST_URL" 2>/dev/null; then
  if [ "${WORKBENCH_REQUIRE_SERVICES:-}" != 1 ] && command -v redis-server >/dev/null; then
    port=$("$VENV_PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
    note "Redis: nothing answers at $REDIS_TEST_URL; starting a private redis-server on $port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
    redis_pid=$!
    trap 'kill $redis_pid 2>/dev/null || true' EXIT
    for _ in $(seq 50); do port_answers 127.0.0.1 "$port" && break; sleep 0.1; done
    export TEST_REDIS_URL="redis://127.0.0.1:$port/15"
  else
    note "Redis does not answer at $REDIS_TEST_URL. Start it (sudo apt-get install redis-server) or set TEST_REDIS_URL."
    exit 1
  fi
fi

mkdir -p var
note "running the suite …"
# Two workers: most of the suite waits on servers, sockets and rate windows, not on the CPU.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-2}" "$@"
