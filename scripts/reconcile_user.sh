#!/usr/bin/env bash
# Pull from the CRM now and merge it in (the CRM wins conflicts); prints what changed.
# Usage: scripts/reconcile_user.sh ID      one user, now
#        scripts/reconcile_user.sh --all   a sweep of every record changed since the last one
#        scripts/reconcile_user.sh --full  a full reconcile: every CRM record read, and every linked user the
#                                          CRM no longer has handled as deleted there (after a CRM lost records);
#                                          waits for it, printing progress
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG ID | --all | --full"; fi
use_token
case "$1" in
  --all)
    http POST "$CRMSYNC_URL/reconcile" "" "$AUTH"
    show
    fail_unless_ok
    ;;
  --full)
    http POST "$CRMSYNC_URL/reconcile?full=true" "" "$AUTH"
    fail_unless_ok
    "$PY" scripts/scan_progress.py "$CRMSYNC_URL/reconcile" "$AUTH"
    ;;
  *)
    http POST "$CRMSYNC_URL/users/$(urlencode "$1")/reconcile" "" "$AUTH"
    show
    fail_unless_ok
    ;;
esac
