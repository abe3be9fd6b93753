#!/usr/bin/env bash
# Find contacts whose name, email or phone holds TEXT (ignoring case), optionally with one sync status.
# Usage: scripts/find_users.sh TEXT [STATUS [LIMIT [CURSOR]]]
#   STATUS: pending, synced, failed, deleting, or "" for all; CURSOR: next_cursor from the previous page.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -ge 1 ] && [ $# -le 4 ] || die "usage: $PROG TEXT [STATUS [LIMIT [CURSOR]]]"
query="$("$PY" -c '
import sys, urllib.parse
names = ("q", "sync_status", "limit", "cursor")
print("?" + urllib.parse.urlencode([(n, v) for n, v in zip(names, sys.argv[1:]) if v]))' "$@")"
use_token
http GET "$CRMSYNC_URL/users$query" "" "$AUTH"
show
fail_unless_ok
