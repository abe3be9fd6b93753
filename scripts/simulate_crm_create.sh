#!/usr/bin/env bash
# Add a contact in the mock CRM as a person would. The mock sends a signed contact.created webhook, and
# crmsync shows the contact as synced (or links it to a local contact with the same email).
# Usage: scripts/simulate_crm_create.sh name=NAME email=EMAIL phone=PHONE
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 3 ]; then die "usage: $PROG name=NAME email=EMAIL phone=PHONE"; fi
field_pairs "$@"
use_crm_token
http POST "$MOCK_CRM_URL/crm/_admin/users" "$(json_object "${PAIRS[@]}")" "$CRM_AUTH"
show
ok || exit 1
echo "the mock CRM now sends contact.created; see it with scripts/list_users.sh"
