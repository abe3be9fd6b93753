#!/usr/bin/env bash
# Create an account on crmsync and keep its token in data/token.
# If the email is already registered, sign in with the same password instead.
# Usage: scripts/create_account.sh EMAIL [PASSWORD]   (asks for the password when omitted)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $PROG EMAIL [PASSWORD]"; fi
email="$1"
if [ $# -eq 2 ]; then
  password="$2"
else
  read -rsp "Password (8 characters or more): " password
  echo
fi

http POST "$CRMSYNC_URL/accounts" "$(json_object email "$email" password "$password" password_confirmation "$password")"
if [ "$HTTP_STATUS" = 409 ]; then
  echo "$email already has an account; signing in with this password instead"
  http POST "$CRMSYNC_URL/authenticate" "$(json_object email "$email" password "$password")"
fi
show_hiding auth_token
fail_unless_ok
save_token
