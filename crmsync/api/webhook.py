"""POST /webhook: signed CRM change notifications, verified on the raw body before parsing."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import attrs
from aiohttp import web

from ..auth import public
from ..errors import ServiceError, Unauthorized, ValidationFailed
from ..keys import config_key, engine_key
from ..render import json_response
from ..signatures import SignatureError, verify
from ..sync import webhooks
from ..sync.webhooks import WebhookEvent
from ..timeutil import isoformat, parse_iso, utcnow
from ..validation import UNSET, parse_json_object, structure, validate_contact

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=5)


KINDS = ("contact.updated", "contact.created", "contact.deleted")


@attrs.frozen
class WebhookBody:
    """The seed's payload plus event_id, source and type (an update when absent)."""

    crm_id: str
    timestamp: str
    updated_fields: dict[str, Any] = UNSET
    event_id: str = UNSET
    source: str = "crm"
    type: str = "contact.updated"


@public
async def receive_webhook(request: web.Request) -> web.Response:
    """Verify on the raw bytes, then validate, then apply once; the status tells the sender whether to retry."""
    raw = await request.read()
    try:
        event_id = verify(request.app[config_key].webhook_keys, request.headers, raw)
    except SignatureError as exc:
        logger.warning(
            "webhook_unverified", extra={"reason": str(exc), "webhook_id": request.headers.get("webhook-id")}
        )
        raise Unauthorized("The webhook signature is missing, invalid or too old.") from None
    logger.info("webhook_received", extra={"event_id": event_id})
    engine = request.app[engine_key]
    try:
        event = _parse(event_id, raw)
    except ServiceError as exc:
        engine.metrics.webhooks.labels("rejected").inc()
        await webhooks.record_invalid(engine.db, event_id, raw, exc)
        raise
    if event is None:
        logger.info("webhook_ignored", extra={"event_id": event_id, "reason": "meeting events are not synced back"})
        return json_response({"result": "ignored"})
    handled = await webhooks.receive(engine, event)
    return json_response({"result": handled.result, "user_id": handled.user_id,
                          "changed_fields": handled.changed_fields, "conflicts": list(handled.conflicts)})  # fmt: skip


def _parse(event_id: str, raw: bytes) -> WebhookEvent | None:
    """The validated event, or None for an event about something we do not sync back (a meeting)."""
    data = parse_json_object(raw)
    if "meeting_id" in data and "crm_id" not in data:
        return None
    body = structure(data, WebhookBody)
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
    if body.type not in KINDS:
        errors["type"] = f"must be one of {', '.join(KINDS)}"
    updated = {} if body.updated_fields is UNSET else body.updated_fields
    fields: dict[str, str] = {}
    if body.type != "contact.deleted":  # a deletion carries no fields to check
        if body.updated_fields is UNSET:
            errors["updated_fields"] = "is required"
        else:
            try:
                fields = validate_contact(updated, partial=True)
            except ValidationFailed as exc:
                errors.update({f"updated_fields.{k}": v for k, v in exc.extra["fields"].items()})
    if errors:
        raise ValidationFailed(errors)
    raw_fields = {f: updated[f] for f in fields}
    return WebhookEvent(
        event_id, body.crm_id[:128], fields, timestamp, body.source, raw.decode("utf-8"), raw_fields, body.type
    )
