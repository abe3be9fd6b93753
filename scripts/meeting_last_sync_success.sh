#!/usr/bin/env bash
# The seed's second curl example: whether a meeting's last sync succeeded, when, and why not.
# The token goes in Authorization bare, exactly as the seed sends it (Bearer works too).
# Usage: scripts/meeting_last_sync_success.sh MEETING_ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG MEETING_ID"; fi
use_token
sed -i 's/^Authorization: Bearer /Authorization: /' "$AUTH"
http GET "$CRMSYNC_URL/meetings/$(urlencode "$1")/last_sync_success" "" "$AUTH"
show
fail_unless_ok
