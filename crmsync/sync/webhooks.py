"""Incoming CRM webhooks: dedupe by event id, apply the change, and store every event."""

from __future__ import annotations

import json
import logging

import aiosqlite
import attrs

from ..db import Database, fetch_one
from ..errors import ApiError, NotFound
from ..store.crm_changes import apply_crm_change, user_by_crm_id
from ..timeutil import now_iso

logger = logging.getLogger(__name__)

# Events with these results were handled for good; a redelivery is only acknowledged.
FINAL = ("applied", "stale")


@attrs.frozen
class WebhookEvent:
    """A verified, validated CRM change notification."""

    event_id: str
    crm_id: str
    fields: dict[str, str]
    timestamp: str
    source: str
    payload: str


@attrs.frozen
class Handled:
    """What became of an event."""

    result: str
    user_id: str | None = None
    changed_fields: dict[str, str] = attrs.Factory(dict)
    conflicts: tuple[str, ...] = ()
    job_id: int | None = None


async def handle(db: Database, event: WebhookEvent) -> Handled:
    """Apply an event once; raise NotFound for an unknown crm_id so the sender retries later."""
    async with db.transaction() as conn:
        seen = await fetch_one(conn, "SELECT result, user_id FROM webhook_events WHERE id = ?", (event.event_id,))
        if seen is not None and seen["result"] in FINAL:
            return Handled("duplicate", seen["user_id"])
        user = await user_by_crm_id(conn, event.crm_id)
        if user is None:
            await _store(conn, event, None, "unknown_crm_id", None)
            handled = None
        else:
            applied = await apply_crm_change(conn, user, event.fields, event.timestamp, f"webhook {event.event_id}")
            merged = applied.merged
            result = "stale" if merged is None else "applied"
            conflicts = tuple(c.field for c in merged.conflicts) if merged else ()
            detail = json.dumps({"changed_fields": merged.changed, "conflicts": conflicts}) if merged else None
            await _store(conn, event, user.id, result, detail)
            handled = Handled(result, user.id, merged.changed if merged else {}, conflicts, applied.job_id)
    if handled is None:
        raise NotFound(f"No local user is linked to {event.crm_id[:64]} yet; retry later.")
    return handled


async def record_rejected(db: Database, event: WebhookEvent, error: ApiError) -> None:
    """Keep a rejected event for the history (a later delivery may still succeed)."""
    async with db.transaction() as conn:
        user = await user_by_crm_id(conn, event.crm_id)
        await _store(conn, event, user.id if user else None, "rejected", error.message)


async def _store(
    conn: aiosqlite.Connection, event: WebhookEvent, user_id: str | None, result: str, detail: str | None
) -> None:
    await conn.execute(
        "INSERT OR REPLACE INTO webhook_events (id, crm_id, user_id, source, event_timestamp, received_at, result,"
        " detail, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event.event_id, event.crm_id, user_id, event.source, event.timestamp, now_iso(), result, detail,
         event.payload),
    )  # fmt: skip
