#!/usr/bin/env bash
# The seed's first curl example: where a meeting's sync stands (in_progress_sync_status 1, 2, 3 or null).
# The token goes in Authorization bare, exactly as the seed sends it (Bearer works too).
# Usage: scripts/meeting_sync_status.sh MEETING_ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG MEETING_ID"; fi
use_token
sed -i 's/^Authorization: Bearer /Authorization: /' "$AUTH"
http GET "$CRMSYNC_URL/meetings/$(urlencode "$1")/sync_status" "" "$AUTH"
show
fail_unless_ok
