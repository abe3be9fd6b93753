#!/usr/bin/env bash
# crmsync: one entry point for a fresh machine.
#   ./run.sh          install if needed, then run the mock CRM (:8081) and the backend (:8080)
#   ./run.sh test     install the test extras and run the whole test suite
#   ./run.sh bench    run the benchmark harness (scripts/bench.py)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

find_python() {
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "run.sh: Python 3.11 or newer is required" >&2
  exit 1
}

# Install the project (and extras) into .venv; skipped when pyproject.toml has not changed since.
install() {
  local extras="$1" stamp="$VENV/.installed-$1"
  if [ ! -x "$PY" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$PY" -m pip install --quiet --upgrade pip
    if [ "$extras" = "base" ]; then
      "$PY" -m pip install --quiet -e .
    else
      "$PY" -m pip install --quiet -e ".[$extras]"
    fi
    touch "$stamp"
  fi
}

# Development secrets, generated once, readable by this user only, shared by both processes.
dev_env() {
  # The database holds password hashes and contact details, the logs contact ids and emails: owner only.
  (umask 077 && mkdir -p data logs)
  if [ ! -f data/dev.env ]; then
    (umask 077 && "$PY" - >data/dev.env <<'PYEOF'
import base64, secrets
client_secret = secrets.token_urlsafe(32)
webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
print(f"CRMSYNC_CRM_CLIENT_ID=crmsync\nMOCK_CRM_CLIENT_ID=crmsync")
print(f"CRMSYNC_CRM_CLIENT_SECRET={client_secret}\nMOCK_CRM_CLIENT_SECRET={client_secret}")
print(f"CRMSYNC_JWT_SECRET={secrets.token_urlsafe(48)}")
print(f"CRMSYNC_WEBHOOK_SECRET={webhook_secret}\nMOCK_CRM_WEBHOOK_SECRET={webhook_secret}")
PYEOF
    )
    chmod 600 data/dev.env
    echo "run.sh: generated development secrets in data/dev.env"
  fi
  set -a
  # shellcheck disable=SC1091
  . data/dev.env
  set +a
}

wait_for() {
  local url="$1" name="$2"
  for _ in $(seq 1 100); do
    if "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "run.sh: $name did not come up at $url; see logs/" >&2
  return 1
}

serve() {
  install base
  umask 077
  dev_env
  export CRMSYNC_LOG_FILE="${CRMSYNC_LOG_FILE:-logs/crmsync.log}"
  export MOCK_CRM_LOG_FILE="${MOCK_CRM_LOG_FILE:-logs/mock_crm.log}"
  local pids=()
  stop() {
    trap - INT TERM EXIT
    if [ ${#pids[@]} -gt 0 ]; then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    echo "run.sh: stopped"
  }
  trap stop INT TERM EXIT
  # Each app gets its own session, so a Ctrl-C reaches only this script, which then stops each app
  # exactly once (a second signal in the middle of a graceful shutdown would cut it short).
  setsid "$PY" -m mock_crm &
  pids+=($!)
  wait_for "http://${MOCK_CRM_HOST:-127.0.0.1}:${MOCK_CRM_PORT:-8081}/healthz" "the mock CRM"
  setsid "$PY" -m crmsync &
  pids+=($!)
  wait_for "http://${CRMSYNC_HOST:-127.0.0.1}:${CRMSYNC_PORT:-8080}/healthz" "crmsync"
  echo "run.sh: crmsync on http://${CRMSYNC_HOST:-127.0.0.1}:${CRMSYNC_PORT:-8080}, mock CRM on :${MOCK_CRM_PORT:-8081}; Ctrl-C stops both"
  wait -n "${pids[@]}" || true
}

# The dashboard's browser tests drive Debian's chromium: install it when we can (root with apt-get).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  local skip="the dashboard's browser tests will skip (and fail under CI=true)"
  if [ "$EUID" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: warning: /usr/bin/chromium is missing and installing it needs root and apt-get; $skip" >&2
    return 0
  fi
  echo "run.sh: installing Debian's chromium for the dashboard's browser tests"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "run.sh: warning: installing chromium failed; $skip" >&2
  fi
}

case "${1:-serve}" in
  serve | "")
    serve
    ;;
  test)
    shift
    install test
    ensure_chromium
    "$PY" -m pytest "$@"
    ;;
  bench)
    shift
    install test
    "$PY" scripts/bench.py "$@"
    ;;
  *)
    echo "usage: ./run.sh [test [pytest args] | bench [args]]" >&2
    exit 2
    ;;
esac
