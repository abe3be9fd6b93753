"""POST /webhook: signed CRM change notifications, verified on the raw body before parsing."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import attrs
from aiohttp import web

from ..auth import public
from ..errors import ApiError, Unauthorized, ValidationFailed
from ..keys import config_key, db_key, engine_key
from ..signatures import SignatureError, decode_secret, verify
from ..sync import webhooks
from ..sync.webhooks import WebhookEvent
from ..timeutil import isoformat, parse_iso, utcnow
from ..validation import UNSET, parse_json_object, structure, validate_contact

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=5)


@attrs.frozen
class WebhookBody:
    """The seed's payload plus event_id and source."""

    crm_id: str
    updated_fields: dict[str, Any]
    timestamp: str
    event_id: str = UNSET
    source: str = "crm"


@public
async def receive_webhook(request: web.Request) -> web.Response:
    """Verify, validate, apply once, and answer so the sender knows whether to retry."""
    raw = await request.read()
    keys = [decode_secret(s) for s in request.app[config_key].webhook_secrets]
    try:
        event_id = verify(keys, request.headers, raw)
    except SignatureError as exc:
        logger.warning("webhook_rejected", extra={"reason": str(exc), "webhook_id": request.headers.get("webhook-id")})
        raise Unauthorized("The webhook signature is missing, invalid or too old.") from None
    event = _parse(event_id, raw)
    logger.info("webhook_received", extra={"event_id": event.event_id, "crm_id": event.crm_id, "source": event.source})
    db = request.app[db_key]
    try:
        handled = await webhooks.handle(db, event)
    except ApiError as exc:
        outcome = "webhook_unknown_crm_id" if exc.status == 404 else "webhook_rejected"
        logger.warning(outcome, extra={"event_id": event.event_id, "crm_id": event.crm_id, "reason": exc.message})
        if exc.status != 404:
            await webhooks.record_rejected(db, event, exc)
        raise
    if handled.job_id is not None:
        request.app[engine_key].pool.submit(handled.job_id)
    logger.info(
        f"webhook_{handled.result}",
        extra={"event_id": event.event_id, "crm_id": event.crm_id, "user_id": handled.user_id,
               "changed_fields": sorted(handled.changed_fields), "conflicts": list(handled.conflicts)},
    )  # fmt: skip
    return web.json_response(
        {"result": handled.result, "user_id": handled.user_id, "changed_fields": handled.changed_fields,
         "conflicts": list(handled.conflicts)}
    )  # fmt: skip


def _parse(event_id: str, raw: bytes) -> WebhookEvent:
    body = structure(parse_json_object(raw), WebhookBody)
    errors: dict[str, str] = {}
    if body.event_id is not UNSET and body.event_id != event_id:
        errors["event_id"] = "must equal the webhook-id header"
    try:
        moment = parse_iso(body.timestamp)
        timestamp = isoformat(moment)
    except ValueError:
        errors["timestamp"] = "must be an ISO-8601 timestamp"
        timestamp = ""
    else:
        # A change stamped in the future would outrank every real change to its fields until then.
        if moment > utcnow() + MAX_CLOCK_SKEW:
            errors["timestamp"] = "must not be more than 5 minutes in the future"
    if body.source not in ("api", "crm"):
        errors["source"] = "must be api or crm"
    try:
        fields = validate_contact(body.updated_fields, partial=True)
    except ValidationFailed as exc:
        errors.update({f"updated_fields.{k}": v for k, v in exc.extra["fields"].items()})
        fields = {}
    if errors:
        raise ValidationFailed(errors)
    payload = json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
    return WebhookEvent(event_id, body.crm_id[:128], fields, timestamp, body.source, payload)
