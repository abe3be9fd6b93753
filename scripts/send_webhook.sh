#!/usr/bin/env bash
# Sign and post a webhook to crmsync as the CRM would (Standard Webhooks, the secret from data/dev.env),
# with the seed's payload: {"crm_id", "updated_fields": {...}, "timestamp"} plus event_id and source.
# Usage: scripts/send_webhook.sh CRM_ID FIELD=VALUE [FIELD=VALUE ...]
#   WEBHOOK_TIMESTAMP=2023-10-15T12:00:00Z to send an old (stale) change; EVENT_ID=evt_x to redeliver one.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_common.sh
. scripts/_common.sh

if [ $# -lt 2 ]; then die "usage: $PROG CRM_ID FIELD=VALUE [FIELD=VALUE ...]"; fi
[ -r data/dev.env ] || die "data/dev.env not found: run ./run.sh once to generate it"
crm_id="$1"
shift
field_pairs "$@"  # checks the form; the Python below builds the body from the same arguments
CRMSYNC_WEBHOOK_SECRET=""
# shellcheck disable=SC1091
. data/dev.env
[ -n "$CRMSYNC_WEBHOOK_SECRET" ] || die "CRMSYNC_WEBHOOK_SECRET is missing from data/dev.env"
# The payload and its signature are made together so the signed bytes are exactly the bytes sent.
SECRET="${CRMSYNC_WEBHOOK_SECRET%% *}" OUT="$SCRATCH" "$PY" - "$crm_id" "$@" <<'PYEOF'
import base64, datetime, hashlib, hmac, json, os, sys, time, uuid
crm_id, pairs = sys.argv[1], sys.argv[2:]
fields = dict(pair.split("=", 1) for pair in pairs)
event_id = os.environ.get("EVENT_ID") or f"evt_{uuid.uuid4().hex}"
stamp = os.environ.get("WEBHOOK_TIMESTAMP") or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
body = json.dumps({"event_id": event_id, "crm_id": crm_id, "updated_fields": fields, "timestamp": stamp,
                   "source": "crm"}).encode()
now = int(time.time())
key = base64.b64decode(os.environ["SECRET"].removeprefix("whsec_"))
mac = base64.b64encode(hmac.new(key, f"{event_id}.{now}.".encode() + body, hashlib.sha256).digest()).decode()
with open(os.path.join(os.environ["OUT"], "webhook_body"), "wb") as f:
    f.write(body)
with open(os.path.join(os.environ["OUT"], "webhook_headers"), "w") as f:
    f.write(f"webhook-id: {event_id}\nwebhook-timestamp: {now}\nwebhook-signature: v1,{mac}\n")
print(f"event {event_id}: {json.dumps(fields)} at {stamp}")
PYEOF
http POST "$CRMSYNC_URL/webhook" "$(cat "$SCRATCH/webhook_body")" "$SCRATCH/webhook_headers"
show
ok || exit 1
