"""The mock CRM's webhooks: Standard Webhooks signatures, and its JSON body as a typed event."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import attrs

from ...errors import ValidationFailed
from ...signatures import verify
from ...timeutil import isoformat, parse_iso, utcnow
from ...validation import UNSET, parse_json_object, structure, validate_contact
from ..types import WebhookEvent

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


def verify_delivery(keys: Sequence[bytes], headers: Mapping[str, str], raw: bytes) -> str:
    """The delivery's event id once its signature checks out on the raw bytes; SignatureError otherwise."""
    return verify(keys, headers, raw)


def crm_id_of(raw: bytes) -> str:
    """The crm_id a body names, when it is a JSON object with a string crm_id; else ""."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return ""
    crm_id = data.get("crm_id") if isinstance(data, dict) else None
    return crm_id[:128] if isinstance(crm_id, str) else ""


def parse_event(event_id: str, raw: bytes) -> WebhookEvent | None:
    """The validated event, or None for an event about something we do not sync back (a meeting).

    Raises ValidationFailed with per-field reasons.
    """
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
