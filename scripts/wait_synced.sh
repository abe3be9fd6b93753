#!/usr/bin/env bash
# Poll a contact until its sync_status is synced or failed, printing each change.
# Usage: scripts/wait_synced.sh ID [SECONDS]   (deadline, default 15)
# Exit status: 0 synced, 1 failed or error, 2 still pending at the deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $PROG ID [SECONDS]"; fi
limit="${2:-15}"
case "$limit" in '' | *[!0-9]*) die "SECONDS must be a whole number, got '$limit'" ;; esac
use_token
url="$CRMSYNC_URL/users/$(urlencode "$1")"

# Describe the last reply as "status<TAB>seconds since start<TAB>past deadline (0/1)<TAB>details".
describe() {
  "$PY" - "$BODY" "$started" "$limit" <<'PYEOF'
import json, sys, time
path, started, limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with open(path, encoding="utf-8") as f:
    u = json.load(f)
status = u.get("sync_status")
elapsed = time.time() - started
parts = [f"{status:<8}", f"attempts={u.get('sync_attempts')}"]
if u.get("crm_id"):
    parts.append(f"crm_id={u['crm_id']}")
if u.get("last_error"):
    parts.append(f"last_error={u['last_error']!r}")
if status != "synced" and u.get("next_retry_at"):
    parts.append(f"next_retry_at={u['next_retry_at']}")
print(f"{status}\t{elapsed:5.1f}\t{int(elapsed >= limit)}\t{' '.join(parts)}")
PYEOF
}

started="$("$PY" -c 'import time; print(time.time())')"
last=""
while :; do
  http GET "$url" "" "$AUTH"
  if ! ok; then
    show
    fail_unless_ok
  fi
  IFS=$'\t' read -r status elapsed expired details <<<"$(describe)"
  if [ "$details" != "$last" ]; then
    printf '[%ss] %s\n' "$elapsed" "$details"
    last="$details"
  fi
  case "$status" in synced | failed) break ;; esac
  if [ "$expired" = 1 ]; then
    echo "$PROG: still $status after ${limit}s; see scripts/user_history.sh $1" >&2
    exit 2
  fi
  sleep 0.5
done
show
if [ "$status" = failed ]; then
  echo "$PROG: sync failed; see scripts/user_history.sh $1, retry with scripts/sync_user.sh $1" >&2
  exit 1
fi
