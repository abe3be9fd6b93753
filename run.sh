#!/usr/bin/env bash
# crmsync: one entry point for a fresh machine.
#   ./run.sh          install if needed, then run the mock CRM (:8081) and the backend (:8080);
#                     if either fails to start or stops, the other is stopped too and the exit is non-zero;
#                     CRMSYNC_CRM=hubspot ./run.sh runs the HubSpot fake on :8081 instead, and crmsync speaks HubSpot
#   ./run.sh test     install the test extras (and, as root, Debian's chromium and postgresql) and run the tests
#   ./run.sh bench    run the benchmark harness (scripts/bench.py): crmsync beside plain reference apps under
#                     wrk's load (Debian's wrk, installed as root with apt-get when missing); --database
#                     sqlite|postgres|both, --only SCENARIOS, --rounds N, --profile, --quick; --help lists all
#   ./run.sh cluster [N]  N crmsync replicas (default 3) on one PostgreSQL (a throwaway one under data/pg, or
#                     CRMSYNC_DATABASE_URL), the mock CRM (or with CRMSYNC_CRM=hubspot the HubSpot fake)
#                     spreading its webhooks over them; Ctrl-C stops all
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

# True when a stamp exists and pyproject.toml has not changed since it was made.
installed() {
  [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]
}

# Install the project (and extras) into .venv; skipped when pyproject.toml has not changed since.
install() {
  local extras="$1" stamp="$VENV/.installed-$1"
  if [ ! -x "$PY" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  # The test extras include the project itself: after ./run.sh test, ./run.sh has nothing to install.
  if installed "$stamp" || { [ "$extras" = base ] && installed "$VENV/.installed-test"; }; then
    return 0
  fi
  "$PY" -m pip install --quiet --upgrade pip
  if [ "$extras" = "base" ]; then
    "$PY" -m pip install --quiet -e .
  else
    "$PY" -m pip install --quiet -e ".[$extras]"
  fi
  touch "$stamp"
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
  # The HubSpot fake's token and app secret (CRMSYNC_CRM=hubspot ./run.sh), added to an older dev.env too.
  if ! grep -q '^HUBSPOT_FAKE_ACCESS_TOKEN=' data/dev.env; then
    "$PY" - >>data/dev.env <<'PYEOF'
import secrets
token, app_secret = "pat-fake-" + secrets.token_urlsafe(32), secrets.token_urlsafe(32)
print(f"HUBSPOT_FAKE_ACCESS_TOKEN={token}\nCRMSYNC_HUBSPOT_TOKEN={token}")
print(f"HUBSPOT_FAKE_APP_SECRET={app_secret}\nCRMSYNC_HUBSPOT_APP_SECRET={app_secret}")
PYEOF
  fi
  set -a
  # shellcheck disable=SC1091
  . data/dev.env
  set +a
}

# A PostgreSQL cluster ./run.sh cluster started (its data directory), stopped after the apps.
PG_STARTED=""

# The apps serve started (pid, name, log file), in start order. Global, not local to serve: the EXIT trap runs after serve returns.
APP_PIDS=()
APP_NAMES=()
APP_LOGS=()

fail() {
  echo "run.sh: $*" >&2
  exit 1
}

# Stop every app still running: SIGTERM (a graceful stop), then SIGKILL for one still there after 20 s.
stop_apps() {
  trap - INT TERM EXIT
  local pid waited=0
  for pid in ${APP_PIDS[@]+"${APP_PIDS[@]}"}; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${APP_PIDS[@]+"${APP_PIDS[@]}"}; do
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 200 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ ${#APP_PIDS[@]} -gt 0 ]; then echo "run.sh: stopped"; fi
  if [ -n "$PG_STARTED" ]; then
    "$PY" scripts/pgcluster.py stop "$PG_STARTED" && echo "run.sh: stopped PostgreSQL in $PG_STARTED"
  fi
}

# A reaped app's pid may be reused by another process: it must never get the stop signal.
forget_app() {
  local i
  for i in "${!APP_PIDS[@]}"; do
    if [ "${APP_PIDS[$i]}" = "$1" ]; then unset 'APP_PIDS[i]'; fi
  done
}

# True when nothing listens on host:port, tested the way the apps bind (SO_REUSEADDR, as aiohttp does).
port_free() {
  "$PY" - "$1" "$2" 2>/dev/null <<'PYEOF'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
PYEOF
}

# Start one app in its own session and wait until it answers /healthz. The port was free just before
# and the app is still running when the answer comes, so the answer is this app's, not another's.
# Arguments after the sixth are VAR=value settings for this app alone.
start_app() {
  local name="$1" module="$2" host="$3" port="$4" port_var="$5" log="$6" pid status deadline
  if ! port_free "$host" "$port"; then
    fail "$name cannot start: $host:$port is already in use (another ./run.sh?); stop it or set $port_var"
  fi
  # Its own session: a Ctrl-C reaches only this script, which then stops each app exactly once
  # (a second signal in the middle of a graceful shutdown would cut it short). env execs: $! is the app.
  # shellcheck disable=SC2086 # the module may carry its arguments ("mock_crm --dialect hubspot")
  setsid env "${@:7}" "$PY" -m $module &
  pid=$!
  APP_PIDS+=("$pid")
  APP_NAMES+=("$name")
  APP_LOGS+=("$log")
  deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0
      wait "$pid" || status=$?
      forget_app "$pid"
      fail "$name failed to start (exit status $status); see its messages above and $log"
    fi
    if "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://$host:$port/healthz" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: $name is up on http://$host:$port (pid $pid, logs in $log)"
      return 0
    fi
    sleep 0.1
  done
  fail "$name did not answer on http://$host:$port/healthz within 30 s; see $log"
}

# The CRM crmsync talks to: the mock CRM, or with CRMSYNC_CRM=hubspot the HubSpot fake in its place (crmsync
# then speaks HubSpot's API to it, and it posts v3-signed webhook batches to /webhook/hubspot). Its webhooks go
# to each crmsync base URL given, in turn, as a load balancer in front of replicas would spread them.
start_crm() {
  local crm_host="$1" crm_port="$2" base hooks=()
  shift 2
  if [ "$(echo "${CRMSYNC_CRM:-mock}" | tr '[:upper:]' '[:lower:]')" = hubspot ]; then
    for base in "$@"; do hooks+=("$base/webhook/hubspot"); done
    export CRMSYNC_HUBSPOT_URL="${CRMSYNC_HUBSPOT_URL:-http://$crm_host:$crm_port}"
    export HUBSPOT_FAKE_WEBHOOK_URL="${HUBSPOT_FAKE_WEBHOOK_URL-${hooks[*]}}"
    start_app "the HubSpot fake" "mock_crm --dialect hubspot" "$crm_host" "$crm_port" MOCK_CRM_PORT \
      "$MOCK_CRM_LOG_FILE" HUBSPOT_FAKE_HOST="$crm_host" HUBSPOT_FAKE_PORT="$crm_port" \
      HUBSPOT_FAKE_LOG_FILE="$MOCK_CRM_LOG_FILE"
  else
    for base in "$@"; do hooks+=("$base/webhook"); done
    export CRMSYNC_CRM_URL="${CRMSYNC_CRM_URL:-http://$crm_host:$crm_port}"
    export MOCK_CRM_WEBHOOK_URL="${MOCK_CRM_WEBHOOK_URL-${hooks[*]}}"
    start_app "the mock CRM" mock_crm "$crm_host" "$crm_port" MOCK_CRM_PORT "$MOCK_CRM_LOG_FILE"
  fi
}

serve() {
  install base
  umask 077
  dev_env
  export CRMSYNC_LOG_FILE="${CRMSYNC_LOG_FILE:-logs/crmsync.log}"
  export MOCK_CRM_LOG_FILE="${MOCK_CRM_LOG_FILE:-logs/mock_crm.log}"
  local host="${CRMSYNC_HOST:-127.0.0.1}" port="${CRMSYNC_PORT:-8080}"
  local crm_host="${MOCK_CRM_HOST:-127.0.0.1}" crm_port="${MOCK_CRM_PORT:-8081}"
  # Whatever ends this script (a failed start, an app that died, Ctrl-C, an error) stops both apps.
  trap stop_apps EXIT
  trap 'stop_apps; exit 0' INT TERM
  # Each app finds the other on the ports used here, unless told otherwise.
  start_crm "$crm_host" "$crm_port" "http://$host:$port"
  start_app crmsync crmsync "$host" "$port" CRMSYNC_PORT "$CRMSYNC_LOG_FILE"
  echo "run.sh: crmsync on http://$host:$port, ${APP_NAMES[0]#the } on :$crm_port; Ctrl-C stops both"
  watch_apps "the other app"
}

# Wait until an app stops on its own, then fail naming it (the EXIT trap stops the others).
watch_apps() {
  local others="$1" status=0 i
  wait -n "${APP_PIDS[@]}" || status=$?
  for i in "${!APP_PIDS[@]}"; do
    if ! kill -0 "${APP_PIDS[$i]}" 2>/dev/null; then
      forget_app "${APP_PIDS[$i]}"
      fail "${APP_NAMES[$i]} stopped on its own (exit status $status); stopping $others; see ${APP_LOGS[$i]}"
    fi
  done
  fail "an app stopped on its own (exit status $status); see logs/"
}

# The replicas' ports: CRMSYNC_PORTS when set (one per replica), else CRMSYNC_PORT (8080) and the ports
# after it, skipping the mock CRM's: 8080, 8082, 8083, ...
cluster_ports() {
  local count="$1" skip="$2" port ports=()
  if [ -n "${CRMSYNC_PORTS:-}" ]; then
    read -r -a ports <<<"$CRMSYNC_PORTS"
    [ "${#ports[@]}" -ge "$count" ] || fail "CRMSYNC_PORTS names ${#ports[@]} ports for $count replicas"
  else
    port="${CRMSYNC_PORT:-8080}"
    while [ "${#ports[@]}" -lt "$count" ]; do
      if [ "$port" != "$skip" ]; then ports+=("$port"); fi
      port=$((port + 1))
    done
  fi
  echo "${ports[@]:0:$count}"
}

# The database the replicas share: CRMSYNC_DATABASE_URL, else a throwaway cluster under data/pg
# (started here, and stopped at the end unless it was already running).
cluster_database() {
  if [ -n "${CRMSYNC_DATABASE_URL:-}" ]; then
    [[ "$CRMSYNC_DATABASE_URL" == postgres* ]] || fail "CRMSYNC_DATABASE_URL must be a postgresql:// URL: replicas share one PostgreSQL"
    return 0
  fi
  # As root the server runs as the postgres user, which must be able to pass through data/ (its files stay 0600).
  if [ "$EUID" -eq 0 ]; then chmod 711 data; fi
  if ! "$PY" scripts/pgcluster.py url data/pg >/dev/null 2>&1; then PG_STARTED=data/pg; fi
  CRMSYNC_DATABASE_URL="$("$PY" scripts/pgcluster.py start data/pg)" || fail "PostgreSQL did not start in data/pg (the reason is above); or set CRMSYNC_DATABASE_URL to a server of your own"
  export CRMSYNC_DATABASE_URL
  echo "run.sh: PostgreSQL is up in data/pg: $CRMSYNC_DATABASE_URL (trust auth, no password)"
}

cluster() {
  local count="${1:-3}"
  [[ "$count" =~ ^[1-9][0-9]?$ ]] || { echo "usage: ./run.sh cluster [N]  (N replicas, 1 to 99; default 3)" >&2; exit 2; }
  install base
  umask 077
  dev_env
  export MOCK_CRM_LOG_FILE="${MOCK_CRM_LOG_FILE:-logs/mock_crm.log}"
  local host="${CRMSYNC_HOST:-127.0.0.1}" crm_host="${MOCK_CRM_HOST:-127.0.0.1}" crm_port="${MOCK_CRM_PORT:-8081}"
  local ports port i=0 urls=()
  read -r -a ports <<<"$(cluster_ports "$count" "$crm_port")"
  for port in "${ports[@]}"; do
    urls+=("http://$host:$port")
  done
  trap stop_apps EXIT
  trap 'stop_apps; exit 0' INT TERM
  cluster_database
  start_crm "$crm_host" "$crm_port" "${urls[@]}"
  for port in "${ports[@]}"; do
    i=$((i + 1))
    start_app "crmsync replica $i" crmsync "$host" "$port" CRMSYNC_PORTS "logs/crmsync-$i.log" \
      "CRMSYNC_PORT=$port" "CRMSYNC_LOG_FILE=logs/crmsync-$i.log"
  done
  echo "run.sh: $count crmsync replicas on ${urls[*]} (one PostgreSQL), ${APP_NAMES[0]#the } on :$crm_port; Ctrl-C stops all"
  watch_apps "the others"
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

# The PostgreSQL tests and the benchmark start throwaway clusters from the server binaries (scripts/pgcluster.py):
# install Debian's postgresql when they are missing and we can (root with apt-get). Debian would also create and
# start a cluster of its own ("main", on port 5432); that is turned off first, as the official Docker image does.
ensure_postgres() {
  "$PY" scripts/pgcluster.py bindir >/dev/null 2>&1 && return 0
  local skip="the PostgreSQL tests will skip (and fail under CI=true)"
  if [ "$EUID" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: warning: the PostgreSQL server binaries (initdb, pg_ctl) are missing and installing them needs root and apt-get; $skip" >&2
    return 0
  fi
  echo "run.sh: installing Debian's postgresql for the PostgreSQL tests and the benchmark"
  if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null &&
    sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null &&
    "$PY" scripts/pgcluster.py bindir >/dev/null; }; then
    echo "run.sh: warning: installing postgresql failed; $skip" >&2
  fi
}

# The benchmark's load comes from wrk (a C load generator, so that the load takes little of the CPU it
# measures); the bench's smoke tests run it too. Install Debian's wrk when it is missing and we can.
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  local skip="the bench cannot run its load (and its smoke tests skip, or fail under CI=true)"
  if [ "$EUID" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: warning: wrk is missing and installing it needs root and apt-get; $skip" >&2
    return 0
  fi
  echo "run.sh: installing Debian's wrk for the benchmark"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }; then
    echo "run.sh: warning: installing wrk failed; $skip" >&2
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
    ensure_postgres
    ensure_wrk
    "$PY" -m pytest "$@"
    ;;
  bench)
    shift
    install test
    ensure_postgres
    ensure_wrk
    "$PY" scripts/bench.py "$@"
    ;;
  cluster)
    shift
    cluster "$@"
    ;;
  *)
    echo "usage: ./run.sh [test [pytest args] | bench [--database sqlite|postgres|both] [--only ingest,e2e,...] [--rounds N] [--profile] [--quick] | bench --help | cluster [N]]" >&2
    exit 2
    ;;
esac
