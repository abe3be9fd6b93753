#!/usr/bin/env bash
# Queue a contact for sync now (the manual retry for a failed one); crmsync answers 202.
# Usage: scripts/sync_user.sh ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -eq 1 ] || die "usage: $PROG ID"
use_token
http POST "$CRMSYNC_URL/users/$(urlencode "$1")/sync" "" "$AUTH"
show
fail_unless_ok
echo "next: scripts/wait_synced.sh $1"
