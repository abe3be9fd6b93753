"""Incoming CRM webhooks: dedupe by event id, apply the change, and store every event."""

from __future__ import annotations

import json
import logging

import attrs

from ..errors import ApiError, Conflict, NotFound
from ..events import user_event
from ..store import jobs, users, webhook_events
from ..store.crm_changes import CrmChange, apply_crm_change
from ..store.database import Connection, Database
from ..timeutil import now_iso
from .engine import SyncEngine

logger = logging.getLogger(__name__)

# Events with these results were handled for good; a redelivery is only acknowledged.
FINAL = ("applied", "stale")
SETTLE_SECONDS = 5.0
MAX_PAYLOAD = 16 * 1024


@attrs.frozen
class WebhookEvent:
    """A verified, validated CRM change notification."""

    event_id: str
    crm_id: str
    fields: dict[str, str]
    timestamp: str
    source: str
    payload: str
    raw_fields: dict[str, str] = attrs.Factory(dict)  # the values as the CRM holds them, before we normalise


@attrs.frozen
class Handled:
    """What became of an event."""

    result: str
    user_id: str | None = None
    changed_fields: dict[str, str] = attrs.Factory(dict)
    conflicts: tuple[str, ...] = ()
    job_id: int | None = None


async def receive(engine: SyncEngine, event: WebhookEvent) -> Handled:
    """Apply an event once it is safe to, store it, log what became of it, and queue any push it leaves."""
    user = None
    if engine.inflight:  # only worth a lookup while some push is on the wire
        user = await users.by_crm_id(engine.db, event.crm_id)
    if user is not None and not await engine.inflight.settled(user.id, SETTLE_SECONDS):
        # Our own push for this user is on the wire; its answer must land first. The CRM will retry.
        raise Conflict("A push for this contact is in flight; retry shortly.")
    context = {"event_id": event.event_id, "crm_id": event.crm_id, "source": event.source}
    try:
        handled = await handle(engine.db, event)
    except ApiError as exc:
        outcome = "webhook_unknown_crm_id" if exc.status == 404 else "webhook_rejected"
        engine.metrics.webhooks.labels(outcome.removeprefix("webhook_")).inc()
        logger.warning(outcome, extra={**context, "reason": exc.message})
        if exc.status != 404:
            await record_rejected(engine.db, event, exc)
        raise
    engine.metrics.webhooks.labels(handled.result).inc()
    if handled.job_id is not None:
        engine.pool.submit(handled.job_id)
    if engine.events and handled.user_id is not None:
        engine.events.publish({"type": "webhook", "event_id": event.event_id, "user_id": handled.user_id,
                               "result": handled.result, "changed_fields": handled.changed_fields})  # fmt: skip
        if (user := await users.get(engine.db, handled.user_id)) is not None:
            engine.events.publish(user_event(user))
    logger.info(f"webhook_{handled.result}", extra={**context, "user_id": handled.user_id,
                "changed_fields": sorted(handled.changed_fields), "conflicts": list(handled.conflicts)})  # fmt: skip
    return handled


async def handle(db: Database, event: WebhookEvent) -> Handled:
    """Apply an event once; raise NotFound for an unknown crm_id so the sender retries later.

    Events that arrive together are applied in one shared transaction (group commit).
    """
    handled = await db.grouped(lambda conn: _apply(conn, event), users.lock_order(event.crm_id, ""))
    if handled is None:
        raise NotFound(f"No local user is linked to {event.crm_id[:64]} yet; retry later.")
    return handled


async def _apply(conn: Connection, event: WebhookEvent) -> Handled | None:
    # The user's row lock comes first: the same event delivered to two replicas at once waits here,
    # then finds the other's result below.
    user = await users.lock_by_crm_id(conn, event.crm_id)
    seen = await webhook_events.seen(conn, event.event_id)
    if seen is not None and seen[0] in FINAL:
        return Handled("duplicate", seen[1])
    if user is None:
        await _store(conn, event, None, "unknown_crm_id", None)
        return None
    change = CrmChange(event.fields, {f: event.raw_fields.get(f, v) for f, v in event.fields.items()}, event.timestamp)
    applied = await apply_crm_change(conn, user, change, f"webhook {event.event_id}")
    merged = applied.merged
    result = "stale" if applied.stale else "applied"
    conflicts = tuple(c.field for c in merged.conflicts) if merged else ()
    detail = json.dumps({"changed_fields": merged.changed, "conflicts": conflicts}) if merged else None
    job_id = applied.job_id
    if applied.suspicious:
        # Older than a stamp of ours that lies in the future, yet different: ask the CRM what it holds now.
        job_id = await jobs.upsert(conn, jobs.USER_RECONCILE, user.id, now_iso())
        detail = json.dumps({"reconcile": "our field times lie in the future; reading the record"})
    await _store(conn, event, user.id, result, detail)
    return Handled(result, user.id, merged.changed if merged else {}, conflicts, job_id)


async def record_rejected(db: Database, event: WebhookEvent, error: ApiError) -> None:
    """Keep a rejected event for the history (a later delivery may still succeed)."""

    async def store(conn: Connection) -> None:
        user = await users.lock_by_crm_id(conn, event.crm_id) if event.crm_id else None
        await _store(conn, event, user.id if user else None, "rejected", error.message)

    await db.grouped(store, users.lock_order(event.crm_id, ""))


async def record_invalid(db: Database, event_id: str, raw: bytes, error: ApiError) -> None:
    """Keep a verified event we could not accept, with the reason, for the history and for debugging."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    crm_id = data.get("crm_id") if isinstance(data, dict) and isinstance(data.get("crm_id"), str) else ""
    logger.warning("webhook_rejected", extra={"event_id": event_id, "crm_id": crm_id[:128], "reason": error.message})
    event = WebhookEvent(event_id, crm_id[:128], {}, "", "", raw.decode("utf-8", "replace")[:MAX_PAYLOAD])
    await record_rejected(db, event, error)


async def _store(conn: Connection, event: WebhookEvent, user_id: str | None, result: str, detail: str | None) -> None:
    await webhook_events.store(
        conn, event.event_id, event.crm_id, user_id, event.source, event.timestamp, result, detail, event.payload,
        now_iso(),
    )  # fmt: skip
