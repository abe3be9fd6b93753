#!/usr/bin/env bash
# Pull every CRM record into crmsync (backfill), with a progress bar; a stopped import resumes where it was.
# Usage: scripts/import_crm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -ne 0 ]; then die "usage: $PROG"; fi
use_token
http POST "$CRMSYNC_URL/import" "" "$AUTH"
fail_unless_ok
"$PY" scripts/scan_progress.py "$CRMSYNC_URL/import" "$AUTH"
