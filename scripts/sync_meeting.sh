#!/usr/bin/env bash
# "Sync to CRM": start the three-stage sync of a meeting, then follow it until it ends (deadline 15 s).
# Usage: scripts/sync_meeting.sh MEETING_ID [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 1 ]; then die "usage: $PROG MEETING_ID [SECONDS]"; fi
meeting="$(urlencode "$1")"
deadline=$(( $(date +%s) + ${2:-15} ))
use_token
http POST "$CRMSYNC_URL/meetings/$meeting/sync" "" "$AUTH"
fail_unless_ok
last=""
while :; do
  http GET "$CRMSYNC_URL/meetings/$meeting/sync_status" "" "$AUTH"
  fail_unless_ok
  now="$(json_get "$BODY" in_progress_sync_status) $(json_get "$BODY" stage)"
  if [ "$now" != "$last" ]; then
    status="$(json_get "$BODY" in_progress_sync_status)"
    echo "in_progress_sync_status: ${status:-null}${status:+ ($(json_get "$BODY" stage))}"
    last="$now"
  fi
  [ "$now" = " " ] && break
  [ "$(date +%s)" -ge "$deadline" ] && { echo "$PROG: still running at the deadline" >&2; exit 2; }
  sleep 0.1
done
http GET "$CRMSYNC_URL/meetings/$meeting/last_sync_success" "" "$AUTH"
show
