#!/usr/bin/env bash
# Show a contact's sync attempts, newest first.
# Usage: scripts/user_history.sh ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -eq 1 ] || die "usage: $PROG ID"
use_token
http GET "$CRMSYNC_URL/users/$(urlencode "$1")/history" "" "$AUTH"
show
fail_unless_ok
