#!/usr/bin/env bash
# List resolved conflicts (a field changed on both sides; the CRM's value won), newest first.
# Usage: scripts/list_conflicts.sh [LIMIT [CURSOR]]
#   CURSOR: next_cursor from the previous page.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -le 2 ] || die "usage: $PROG [LIMIT [CURSOR]]"
query="$("$PY" -c '
import sys, urllib.parse
pairs = [(n, v) for n, v in zip(("limit", "cursor"), sys.argv[1:]) if v]
print("?" + urllib.parse.urlencode(pairs) if pairs else "")' "$@")"
use_token
http GET "$CRMSYNC_URL/conflicts$query" "" "$AUTH"
show
fail_unless_ok
