#!/usr/bin/env bash
# Delete a contact, here and in the CRM: at once when it never reached the CRM, else it turns "deleting"
# while its CRM record is deleted, then only a tombstone stays (GET answers 404).
# Usage: scripts/delete_user.sh ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG ID"; fi
use_token
http DELETE "$CRMSYNC_URL/users/$(urlencode "$1")" "" "$AUTH"
if [ "$HTTP_STATUS" = 204 ]; then
  echo "HTTP 204: deleted (it had never reached the CRM)"
  exit 0
fi
show
fail_unless_ok
echo "its CRM record is being deleted; scripts/get_user.sh $1 answers 404 once it is gone"
