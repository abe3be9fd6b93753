#!/usr/bin/env bash
# Pull the user's record from the CRM now and merge it in (the CRM wins conflicts); prints what changed.
# Usage: scripts/reconcile_user.sh ID      (or: scripts/reconcile_user.sh --all  to start a full sweep)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG ID | --all"; fi
use_token
if [ "$1" = "--all" ]; then
  http POST "$CRMSYNC_URL/reconcile" "" "$AUTH"
else
  http POST "$CRMSYNC_URL/users/$(urlencode "$1")/reconcile" "" "$AUTH"
fi
show
fail_unless_ok
