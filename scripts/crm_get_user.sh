#!/usr/bin/env bash
# Show a record as the mock CRM holds it, to compare with scripts/get_user.sh.
# Gets a CRM access token with the client credentials in data/dev.env (printed nowhere).
# Usage: scripts/crm_get_user.sh CRM_ID
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -eq 1 ] || die "usage: $PROG CRM_ID"
use_crm_token
http GET "$MOCK_CRM_URL/crm/users/$(urlencode "$1")" "" "$CRM_AUTH"
show
ok || exit 1
