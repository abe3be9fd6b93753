#!/usr/bin/env bash
# Create a meeting owned by your account, with users as attendees.
# Usage: scripts/create_meeting.sh TITLE STARTS_AT [USER_ID ...]    e.g. 'Example Sales Meeting' 2026-12-01T15:00:00Z <id>
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 2 ]; then die "usage: $PROG TITLE STARTS_AT [USER_ID ...]"; fi
body="$("$PY" -c 'import json, sys; print(json.dumps({"title": sys.argv[1], "starts_at": sys.argv[2], "attendee_ids": sys.argv[3:]}))' "$@")"
use_token
http POST "$CRMSYNC_URL/meetings" "$body" "$AUTH"
show
fail_unless_ok
echo "meeting id: $(json_get "$BODY" id)"
echo "next: scripts/sync_meeting.sh $(json_get "$BODY" id)"
