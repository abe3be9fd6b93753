#!/usr/bin/env bash
# Load contacts from a CSV file (header name,email,phone) through POST /users/batch, 1,000 rows a request,
# with a progress bar on stderr and a summary: created, linked (the email already had a contact), rejected
# (with line numbers and reasons). Exits 1 when rows were rejected. Running it again is safe.
# Usage: scripts/import_csv.sh FILE.csv
set -euo pipefail
csv_file="${1-}"
case "$csv_file" in /*) ;; ?*) csv_file="$PWD/$csv_file" ;; esac  # before the cd below
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 1 ]; then die "usage: $PROG FILE.csv"; fi
[ -r "$csv_file" ] || die "cannot read $1"
use_token
"$PY" scripts/import_csv.py "$CRMSYNC_URL" "$AUTH" "$csv_file"
