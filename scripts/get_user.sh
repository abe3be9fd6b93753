#!/usr/bin/env bash
# Show one contact with its sync status.
# Usage: scripts/get_user.sh ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -eq 1 ] || die "usage: $PROG ID"
use_token
http GET "$CRMSYNC_URL/users/$(urlencode "$1")" "" "$AUTH"
show
fail_unless_ok
