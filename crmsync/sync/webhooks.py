"""Incoming CRM webhooks: dedupe by event id, apply the change, and store every event."""

from __future__ import annotations

import asyncio
import logging
import time

import attrs

from ..crm.types import WebhookEvent
from ..errors import Conflict, NotFound, ServiceError
from ..events import user_event
from ..store import users, webhook_events
from ..store.database import Connection, Database
from ..timeutil import now_iso
from .engine import SyncEngine
from .lifecycle import lost
from .settle import POLL as SETTLE_POLL
from .settle import SETTLE_SECONDS
from .webhook_kinds import Handled, Options, apply_event, change_of

logger = logging.getLogger(__name__)

# Events with these results were handled for good; a redelivery is only acknowledged.
FINAL = ("applied", "stale", "linked", "imported", "deleted", "deleted_in_crm", "ignored")
MAX_PAYLOAD = 16 * 1024


IN_FLIGHT = Handled("in_flight")  # not applied: a push for the user is on the wire


async def receive(engine: SyncEngine, event: WebhookEvent) -> Handled:
    """Apply an event once it is safe to, store it, log what became of it, and queue any push it leaves."""
    context = {"event_id": event.event_id, "crm_id": event.crm_id, "source": event.source}
    try:
        handled = await handle(engine, event)
    except Conflict as exc:  # a push for the user stayed in flight: the CRM delivers again later
        engine.metrics.webhooks.labels("deferred").inc()
        logger.warning("webhook_deferred", extra={**context, "reason": exc.message})
        raise
    except ServiceError as exc:
        outcome = "webhook_unknown_crm_id" if isinstance(exc, NotFound) else "webhook_rejected"
        engine.metrics.webhooks.labels(outcome.removeprefix("webhook_")).inc()
        logger.warning(outcome, extra={**context, "reason": exc.message})
        if not isinstance(exc, NotFound):
            await record_rejected(engine.db, event, exc)
        raise
    engine.metrics.webhooks.labels(handled.result).inc()
    if handled.job_id is not None:
        engine.wake()
    if handled.gone is not None:
        lost(engine, *handled.gone, seen_by=f"webhook {event.event_id}")
    if engine.events and handled.user_id is not None:
        engine.events.publish({"type": "webhook", "event_id": event.event_id, "user_id": handled.user_id,
                               "result": handled.result, "changed_fields": handled.changed_fields})  # fmt: skip
        if (user := await users.get(engine.db, handled.user_id)) is not None:
            engine.events.publish(user_event(user))
        elif handled.result == "deleted":  # deleted here and in the CRM: this event left the tombstone
            engine.events.publish({"type": "user_deleted", "user_id": handled.user_id})
    logger.info(f"webhook_{handled.result}", extra={**context, "user_id": handled.user_id,
                "changed_fields": sorted(handled.changed_fields), "conflicts": list(handled.conflicts)})  # fmt: skip
    return handled


async def handle(engine: SyncEngine, event: WebhookEvent) -> Handled:
    """Apply an event once; raise NotFound for an unknown crm_id so the sender retries later.

    Events that arrive together are applied in one shared transaction (group commit).
    """
    db, config = engine.db, engine.config
    options = Options(config.on_crm_delete == "delete", config.import_crm_creates)
    deadline = time.monotonic() + SETTLE_SECONDS
    order = users.lock_order(event.crm_id, "")
    while (handled := await db.grouped(lambda conn: _apply(conn, event, db.now(), options), order)) is IN_FLIGHT:
        # A push for this user is on the wire (on any replica): its answer lands first, then this news.
        if time.monotonic() > deadline:
            raise Conflict("A push for this contact is in flight; retry shortly.")
        await asyncio.sleep(SETTLE_POLL)
    if handled is None:
        raise NotFound(f"No local user is linked to {event.crm_id[:64]} yet; retry later.")
    return handled


async def _apply(conn: Connection, event: WebhookEvent, now: str, options: Options) -> Handled | None:
    # The user's row lock comes first: the same event delivered to two replicas at once waits there,
    # then finds the other's result.
    user, seen, pushing = await webhook_events.lock_user_for(conn, event.crm_id, event.event_id, now)
    live = user is not None and user.deleted_at is None
    if seen is not None and seen[0] in FINAL:
        return Handled("duplicate", seen[1])
    if live and pushing:
        return IN_FLIGHT
    change = change_of(event)
    handled = await apply_event(
        conn, event.kind, event.crm_id, change, event.source, user, f"webhook {event.event_id}", now, options
    )  # fmt: skip
    if handled is None:
        await _store(conn, event, None, "unknown_crm_id", None)
        return None
    # A contact deleted here (or being deleted) keeps no name, email or phone, not even in a late event's payload:
    # the tombstone scrubbed the events stored before it, and this one comes after.
    gone = user is not None and (user.deleted_at is not None or user.deleting or handled.result == "deleted")
    await _store(conn, attrs.evolve(event, payload="{}") if gone else event, handled.user_id, handled.result,
                 handled.detail)  # fmt: skip
    return handled


async def record_rejected(db: Database, event: WebhookEvent, error: ServiceError) -> None:
    """Keep a rejected event for the history (a later delivery may still succeed)."""

    async def store(conn: Connection) -> None:
        user = await users.lock_by_crm_id(conn, event.crm_id) if event.crm_id else None
        await _store(conn, event, user.id if user else None, "rejected", error.message)

    await db.grouped(store, users.lock_order(event.crm_id, ""))


async def record_invalid(db: Database, event_id: str, crm_id: str, raw: bytes, error: ServiceError) -> None:
    """Keep a verified event we could not accept, with the reason, for the history and for debugging."""
    logger.warning("webhook_rejected", extra={"event_id": event_id, "crm_id": crm_id[:128], "reason": error.message})
    event = WebhookEvent(event_id, crm_id[:128], {}, "", "", raw.decode("utf-8", "replace")[:MAX_PAYLOAD])
    await record_rejected(db, event, error)


async def _store(conn: Connection, event: WebhookEvent, user_id: str | None, result: str, detail: str | None) -> None:
    await webhook_events.store(
        conn, event.event_id, event.crm_id, user_id, event.source, event.timestamp, result, detail, event.payload,
        now_iso(),
    )  # fmt: skip
