#!/usr/bin/env bash
# Sign in to crmsync and keep the new token in data/token.
# Usage: scripts/sign_in.sh EMAIL [PASSWORD]   (asks for the password when omitted)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $PROG EMAIL [PASSWORD]"; fi
email="$1"
if [ $# -eq 2 ]; then
  password="$2"
else
  read -rsp "Password: " password
  echo
fi

http POST "$CRMSYNC_URL/authenticate" "$(json_object email "$email" password "$password")"
show_hiding auth_token
fail_unless_ok
save_token
