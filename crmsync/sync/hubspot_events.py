"""HubSpot's webhook batches: each event checked, its contact read back from HubSpot, then fed to the one
webhook pipeline (dedupe by event id, the merge, the history) like the mock's events.

A contact.propertyChange event names one property (firstname or lastname, never our one name), and an event
may arrive after later changes of the same contact, so the event is taken as news that the contact changed
and the contact itself is read (one batch read for the whole delivery): a record read straight from the CRM
is the truth for every field it carries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs

from ..crm.errors import CrmError
from ..crm.hubspot.adapter import HubSpotAdapter
from ..crm.types import CrmContact, WebhookEvent
from ..errors import Conflict, NotFound, RetryLater, UpstreamUnavailable, ValidationFailed
from ..store.crm_changes import crm_values
from ..timeutil import isoformat, now_iso
from ..validation import parse_json
from . import webhooks
from .engine import SyncEngine

MAX_EVENTS = 100  # HubSpot sends at most 100 events a request
KINDS = {"contact.creation": "contact.created", "contact.propertyChange": "contact.updated",
         "contact.deletion": "contact.deleted"}  # fmt: skip
SYNCED_PROPERTIES = frozenset({"firstname", "lastname", "email", "phone"})
OUR_SOURCES = frozenset({"INTEGRATION", "API"})  # changes made through the API: possibly our own writes
READ_CHUNK = 100


@attrs.frozen
class HubSpotEvent:
    """One event of a delivery, in our words."""

    event_id: str  # "hubspot-<eventId>-<objectId>-<occurredAt>": HubSpot does not promise eventId is unique alone
    kind: str  # contact.created, contact.updated or contact.deleted
    crm_id: str
    occurred_at: str
    source: str  # "api" (made through the API, perhaps by us) or "crm" (a person, a workflow, an import)
    payload: str


@attrs.frozen
class Delivery:
    """A checked delivery: the events to apply, oldest first, and how many were about something else."""

    events: list[HubSpotEvent]
    ignored: int


def parse_batch(raw: bytes, app_id: int | None) -> Delivery:
    """Check a delivery (a JSON array of 1 to 100 events); ValidationFailed names each wrong field.

    Events of other subscriptions, or property changes of properties we do not sync, are counted as ignored.
    With app_id, only our own app's API changes count as ours (source "api"); without it, every API change.
    """
    data = parse_json(raw)
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_EVENTS:
        raise ValidationFailed({"body": f"must be a JSON array of 1 to {MAX_EVENTS} events"})
    errors: dict[str, str] = {}
    events: list[tuple[int, HubSpotEvent]] = []
    ignored = 0
    for index, item in enumerate(data):
        problems, event = _event(item, app_id)
        errors.update({f"{index}.{field}": reason for field, reason in problems.items()})
        if event is None and not problems:
            ignored += 1
        elif event is not None:
            events.append(event)
    if errors:
        raise ValidationFailed(errors)
    events.sort(key=lambda pair: pair[0])  # by occurredAt; sort is stable for ties
    return Delivery([event for _, event in events], ignored)


def _event(item: Any, app_id: int | None) -> tuple[dict[str, str], tuple[int, HubSpotEvent] | None]:
    if not isinstance(item, dict):
        return {"event": "must be an object"}, None
    problems: dict[str, str] = {}
    for field in ("eventId", "objectId", "occurredAt"):
        value = item.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            problems[field] = "must be a whole number (64 bits)"
    if not isinstance(item.get("subscriptionType"), str):
        problems["subscriptionType"] = "must be a string"
    if problems:
        return problems, None
    kind = KINDS.get(item["subscriptionType"])
    prop = item.get("propertyName")
    if kind is None or (kind == "contact.updated" and not (isinstance(prop, str) and prop in SYNCED_PROPERTIES)):
        return {}, None
    try:
        occurred = isoformat(datetime.fromtimestamp(item["occurredAt"] / 1000, UTC))
    except (OverflowError, OSError, ValueError):
        return {"occurredAt": "must be milliseconds since the epoch"}, None
    change_source = item.get("changeSource")
    by_api = isinstance(change_source, str) and change_source in OUR_SOURCES
    ours = by_api and (app_id is None or str(item.get("sourceId")) == str(app_id))
    try:
        payload = json.dumps(item, separators=(",", ":"))[: webhooks.MAX_PAYLOAD]
    except (RecursionError, ValueError):  # nested deeper than json writes (the parser may take a little more)
        payload = '{"stored": false, "reason": "nested too deeply to store"}'
    # A redelivery repeats eventId, objectId and occurredAt (only attemptNumber counts up): the key for dedupe.
    key = f"hubspot-{item['eventId']}-{item['objectId']}-{item['occurredAt']}"
    event = HubSpotEvent(key, kind, str(item["objectId"]), occurred, "api" if ours else "crm", payload)
    return {}, (item["occurredAt"], event)


async def receive_batch(engine: SyncEngine, crm: HubSpotAdapter, delivery: Delivery) -> list[dict[str, Any]]:
    """Apply every event once, in order; raise RetryLater when some must be delivered again.

    The contacts the events name are read first (UpstreamUnavailable when HubSpot cannot answer: the
    delivery is retried whole, and events already applied are only acknowledged the next time).
    """
    wanted = sorted({event.crm_id for event in delivery.events if event.kind != "contact.deleted"})
    read_since = now_iso()
    records: dict[str, CrmContact] = {}
    try:
        for start in range(0, len(wanted), READ_CHUNK):
            records.update(await crm.get_contacts(wanted[start : start + READ_CHUNK]))
    except CrmError as exc:
        raise UpstreamUnavailable(f"HubSpot could not be asked for the changed contacts: {exc.message}") from None
    results: list[dict[str, Any]] = []
    later = 0
    for event in delivery.events:
        outcome = {"event_id": event.event_id, "crm_id": event.crm_id}
        if event.kind == "contact.deleted":
            typed = WebhookEvent(event.event_id, event.crm_id, {}, event.occurred_at, event.source, event.payload,
                                 kind=event.kind)  # fmt: skip
        elif (record := records.get(event.crm_id)) is None:
            results.append({**outcome, "result": "gone"})  # deleted since: its contact.deletion event follows
            continue
        else:
            clean, raw = crm_values(record)
            typed = WebhookEvent(event.event_id, event.crm_id, clean, record.changed_at, event.source, event.payload,
                                 raw, event.kind, read_since=read_since)  # fmt: skip
        try:
            handled = await webhooks.receive(engine, typed)
        except NotFound as exc:
            if event.source == "crm":
                # A contact nobody here is linked to, changed by a person: waiting would not link it (the sweep
                # imports it when CRMSYNC_IMPORT_CRM_CREATES allows), so it is acknowledged, not redelivered.
                results.append({**outcome, "result": "unknown", "message": exc.message})
                continue
            later += 1  # an API change: perhaps our own create, whose answer links it any moment
            results.append({**outcome, "result": "retry", "message": exc.message})
            continue
        except Conflict as exc:  # a push for the contact is in flight: HubSpot delivers the batch again
            later += 1
            results.append({**outcome, "result": "retry", "message": exc.message})
            continue
        except ValidationFailed as exc:
            results.append({**outcome, "result": "rejected", "message": exc.message})
            continue
        results.append({**outcome, "result": handled.result, "user_id": handled.user_id})
    if later:
        raise RetryLater(f"{later} of the {len(delivery.events)} events must wait; deliver the batch again.",
                         results=results)  # fmt: skip
    return results
