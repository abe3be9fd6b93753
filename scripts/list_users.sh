#!/usr/bin/env bash
# List contacts, oldest first, optionally only those with one sync status.
# Usage: scripts/list_users.sh [STATUS [LIMIT [CURSOR]]]
#   STATUS: pending, synced, failed, or "" for all; CURSOR: next_cursor from the previous page.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -le 3 ] || die "usage: $PROG [STATUS [LIMIT [CURSOR]]]"
query="$("$PY" -c '
import sys, urllib.parse
names = ("sync_status", "limit", "cursor")
pairs = [(n, v) for n, v in zip(names, sys.argv[1:]) if v]
print("?" + urllib.parse.urlencode(pairs) if pairs else "")' "$@")"
use_token
http GET "$CRMSYNC_URL/users$query" "" "$AUTH"
show
fail_unless_ok
