# shellcheck shell=bash
# Helpers shared by the curl walkthrough scripts. Sourced, not run: each script first does
#   set -euo pipefail; cd "$(dirname "$0")/.."; . scripts/_common.sh
#
# Settings: CRMSYNC_URL (default http://127.0.0.1:8080), MOCK_CRM_URL (default http://127.0.0.1:8081),
# CRMSYNC_TOKEN (overrides data/token).

CRMSYNC_URL="${CRMSYNC_URL:-http://127.0.0.1:8080}"
CRMSYNC_URL="${CRMSYNC_URL%/}"
MOCK_CRM_URL="${MOCK_CRM_URL:-http://127.0.0.1:8081}"
MOCK_CRM_URL="${MOCK_CRM_URL%/}"
TOKEN_FILE=data/token
PROG="$(basename "$0")"

die() {
  echo "$PROG: $*" >&2
  exit 1
}

if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif command -v python3 >/dev/null 2>&1; then
  PY=python3
else
  die "python3 is needed to build and print JSON (or run ./run.sh once to create .venv)"
fi
command -v curl >/dev/null 2>&1 || die "curl is not installed"

# Private scratch space (mode 0700) for request bodies, replies and header files; removed on exit.
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/crmsync.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
BODY="$SCRATCH/body"
HTTP_STATUS=""

# json_object KEY VALUE [KEY VALUE ...]: print a JSON object of string values, built from argv.
json_object() {
  "$PY" -c 'import json, sys; a = sys.argv[1:]; print(json.dumps(dict(zip(a[::2], a[1::2]))))' "$@"
}

# json_get FILE KEY: print a top-level value of a JSON object ("" when missing, null or not JSON).
json_get() {
  "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        value = json.load(f).get(sys.argv[2])
except (ValueError, AttributeError, OSError):
    value = None
if value is not None:
    print(value if isinstance(value, str) else json.dumps(value))
PYEOF
}

# urlencode TEXT: percent-encode one path segment or query value.
urlencode() {
  "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# http METHOD URL [BODY [HEADER_FILE [CONTENT_TYPE]]]
# Send a request; the reply body goes to $BODY and its status to $HTTP_STATUS. Bodies and headers
# travel through files, so passwords and tokens never appear on curl's command line.
http() {
  local method="$1" url="$2" body="${3-}" header_file="${4-}" content_type="${5:-application/json}"
  local args=(--silent --show-error --max-time 30 -X "$method" -o "$BODY" -w '%{http_code}'
    -H 'Accept: application/json')
  if [ -n "$body" ]; then
    printf '%s' "$body" >"$SCRATCH/request"
    args+=(-H "Content-Type: $content_type" --data-binary "@$SCRATCH/request")
  fi
  if [ -n "$header_file" ]; then
    args+=(-H "@$header_file")
  fi
  : >"$BODY"
  if ! HTTP_STATUS="$(curl "${args[@]}" "$url")"; then
    die "no answer from $url; is ./run.sh running?"
  fi
}

# show: print the status line and the reply as indented JSON.
show() {
  _print_reply
}

# show_hiding KEY ...: like show, with the values of the named top-level keys replaced by "(hidden)".
show_hiding() {
  _print_reply "$@"
}

_print_reply() {
  echo "HTTP $HTTP_STATUS"
  [ -s "$BODY" ] || return 0
  if ! "$PY" - "$BODY" "$@" 2>/dev/null <<'PYEOF' | "$PY" -m json.tool --no-ensure-ascii 2>/dev/null; then
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f)
for key in sys.argv[2:]:
    if isinstance(data, dict) and key in data:
        data[key] = "(hidden)"
print(json.dumps(data))
PYEOF
    cat "$BODY"
    echo
  fi
}

# ok: true for a 2xx status.
ok() {
  case "$HTTP_STATUS" in 2??) return 0 ;; *) return 1 ;; esac
}

# fail_unless_ok: exit 1 after a non-2xx reply, with a hint for the usual causes.
fail_unless_ok() {
  ok && return 0
  if [ "$HTTP_STATUS" = 401 ] && [ "$(json_get "$BODY" error)" = unauthorized ]; then
    echo "$PROG: the token was refused (expired, or from another database); run scripts/sign_in.sh EMAIL PASSWORD" >&2
  fi
  exit 1
}

# save_token: store auth_token from the last reply in data/token (mode 0600).
save_token() {
  local token
  token="$(json_get "$BODY" auth_token)"
  [ -n "$token" ] || die "the reply has no auth_token"
  mkdir -p data
  (umask 077 && printf '%s\n' "$token" >"$TOKEN_FILE.new$$")
  mv -f "$TOKEN_FILE.new$$" "$TOKEN_FILE"
  echo "token saved to $TOKEN_FILE"
}

# use_token: write the Authorization header for crmsync to $AUTH (from $CRMSYNC_TOKEN or data/token).
AUTH="$SCRATCH/auth"
use_token() {
  local token=""
  if [ -n "${CRMSYNC_TOKEN:-}" ]; then
    token="$CRMSYNC_TOKEN"
  elif [ -s "$TOKEN_FILE" ]; then
    token="$(<"$TOKEN_FILE")"
  fi
  [ -n "$token" ] || die "no token in $TOKEN_FILE: run scripts/create_account.sh EMAIL PASSWORD (or scripts/sign_in.sh EMAIL PASSWORD) first"
  printf 'Authorization: Bearer %s\n' "$token" >"$AUTH"
}

# use_crm_token: get a mock CRM access token with the client credentials in data/dev.env and write
# its Authorization header to $CRM_AUTH. Neither the secret nor the token is printed.
CRM_AUTH="$SCRATCH/crm_auth"
use_crm_token() {
  [ -r data/dev.env ] || die "data/dev.env not found: run ./run.sh once to generate it"
  local MOCK_CRM_CLIENT_ID="" MOCK_CRM_CLIENT_SECRET=""
  # shellcheck disable=SC1091
  . data/dev.env
  [ -n "$MOCK_CRM_CLIENT_SECRET" ] || die "MOCK_CRM_CLIENT_SECRET is missing from data/dev.env"
  CLIENT_ID="${MOCK_CRM_CLIENT_ID:-crmsync}" CLIENT_SECRET="$MOCK_CRM_CLIENT_SECRET" "$PY" -c '
import base64, os
pair = (os.environ["CLIENT_ID"] + ":" + os.environ["CLIENT_SECRET"]).encode()
print("Authorization: Basic " + base64.b64encode(pair).decode())' >"$SCRATCH/basic"
  http POST "$MOCK_CRM_URL/crm/token" "grant_type=client_credentials" "$SCRATCH/basic" \
    application/x-www-form-urlencoded
  if ! ok; then
    echo "$PROG: the mock CRM refused the client credentials in data/dev.env:" >&2
    show >&2
    exit 1
  fi
  local token
  token="$(json_get "$BODY" access_token)"
  [ -n "$token" ] || die "the mock CRM's token reply has no access_token"
  printf 'Authorization: Bearer %s\n' "$token" >"$CRM_AUTH"
}

# field_pairs FIELD=VALUE...: fill the array PAIRS with FIELD VALUE FIELD VALUE..., or die on a bad one.
PAIRS=()
field_pairs() {
  local assignment
  PAIRS=()
  for assignment in "$@"; do
    case "$assignment" in
      ?*=*) PAIRS+=("${assignment%%=*}" "${assignment#*=}") ;;
      *) die "expected FIELD=VALUE, got '$assignment'" ;;
    esac
  done
}
