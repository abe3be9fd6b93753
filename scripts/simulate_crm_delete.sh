#!/usr/bin/env bash
# Delete a contact in the mock CRM as a person would. The mock sends a signed contact.deleted webhook;
# crmsync shows the local contact as failed with "The contact was deleted in the CRM." until a person
# chooses: scripts/sync_user.sh ID creates it in the CRM again, scripts/delete_user.sh ID deletes it here.
# Usage: scripts/simulate_crm_delete.sh CRM_ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG CRM_ID"; fi
use_crm_token
http DELETE "$MOCK_CRM_URL/crm/_admin/users/$(urlencode "$1")" "" "$CRM_AUTH"
if [ "$HTTP_STATUS" = 204 ]; then
  echo "HTTP 204: deleted in the CRM; the mock now sends contact.deleted to crmsync"
  exit 0
fi
show
exit 1
