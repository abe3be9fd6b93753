#!/usr/bin/env bash
# Create a contact; crmsync stores it as pending and pushes it to the CRM in the background.
# Usage: scripts/create_user.sh NAME EMAIL PHONE
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

[ $# -eq 3 ] || die "usage: $PROG NAME EMAIL PHONE"
use_token
http POST "$CRMSYNC_URL/users" "$(json_object name "$1" email "$2" phone "$3")" "$AUTH"
show
fail_unless_ok
id="$(json_get "$BODY" id)"
echo "user id: $id"
echo "next: scripts/wait_synced.sh $id"
