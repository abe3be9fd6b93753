#!/usr/bin/env bash
# Show or change the mock CRM's fault settings, live (GET / PUT /crm/_admin/faults).
# Usage: scripts/crm_faults.sh [FIELD=NUMBER ...]
#   fields: failure_rate (0-1), lost_reply_rate (0-1), latency_ms, rate_limit (requests/s), rate_burst
# Example: scripts/crm_faults.sh failure_rate=1   ...   scripts/crm_faults.sh failure_rate=0
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

for assignment in "$@"; do
  case "$assignment" in
    ?*=?*) ;;
    *) die "expected FIELD=NUMBER, got '$assignment'" ;;
  esac
done
use_crm_token
if [ $# -eq 0 ]; then
  http GET "$MOCK_CRM_URL/crm/_admin/faults" "" "$CRM_AUTH"
else
  body="$("$PY" -c '
import json, sys
settings = {}
for arg in sys.argv[1:]:
    name, _, value = arg.partition("=")
    try:
        settings[name] = int(value) if value.isdigit() else float(value)
    except ValueError:
        sys.exit(f"crm_faults.sh: {name} must be a number, got {value!r}")
print(json.dumps(settings))' "$@")"
  http PUT "$MOCK_CRM_URL/crm/_admin/faults" "$body" "$CRM_AUTH"
fi
show
ok || exit 1
