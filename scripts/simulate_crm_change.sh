#!/usr/bin/env bash
# Change a record in the mock CRM as a person working in the CRM would. The mock then sends a
# signed webhook to crmsync, which applies the change to the local user.
# Usage: scripts/simulate_crm_change.sh CRM_ID FIELD=VALUE [FIELD=VALUE ...]   (fields: name, email, phone)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 2 ]; then die "usage: $PROG CRM_ID FIELD=VALUE [FIELD=VALUE ...]"; fi
crm_id="$1"
shift
field_pairs "$@"
use_crm_token
http POST "$MOCK_CRM_URL/crm/_admin/users/$(urlencode "$crm_id")/edit" "$(json_object "${PAIRS[@]}")" "$CRM_AUTH"
show
ok || exit 1
echo "the mock CRM now sends a webhook to crmsync; see the change with scripts/list_users.sh or scripts/get_user.sh ID"
