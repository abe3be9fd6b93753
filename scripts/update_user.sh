#!/usr/bin/env bash
# Change a local user; crmsync marks it pending and pushes the change to the CRM through its outbox.
# Usage: scripts/update_user.sh ID FIELD=VALUE [FIELD=VALUE ...]   (fields: name, email, phone)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 2 ]; then die "usage: $PROG ID FIELD=VALUE [FIELD=VALUE ...]"; fi
user_id="$1"
shift
field_pairs "$@"
use_token
http PATCH "$CRMSYNC_URL/users/$(urlencode "$user_id")" "$(json_object "${PAIRS[@]}")" "$AUTH"
show
fail_unless_ok
echo "queued for the CRM; follow it with scripts/wait_synced.sh $user_id"
