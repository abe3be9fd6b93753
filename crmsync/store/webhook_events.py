"""The webhook_events table: every CRM event received, what became of it, and its retention."""

from __future__ import annotations

from .database import Connection, Database

PRUNE_BATCH = 1_000

# Oldest first through the received_at index; the LIMIT bounds how long one transaction holds the writer.
_PRUNE = (
    "DELETE FROM webhook_events WHERE id IN"
    " (SELECT id FROM webhook_events WHERE received_at < $1 ORDER BY received_at LIMIT $2)"
)


async def seen(conn: Connection, event_id: str) -> tuple[str, str | None] | None:
    """(result, user id) of an event received before, or None."""
    row = await conn.fetchrow("SELECT result, user_id FROM webhook_events WHERE id = $1", event_id)
    return None if row is None else (row[0], row[1])


async def store(
    conn: Connection,
    event_id: str,
    crm_id: str,
    user_id: str | None,
    source: str,
    timestamp: str | None,
    result: str,
    detail: str | None,
    payload: str,
    now: str,
) -> None:
    """Keep an event and its result; a redelivery's result replaces the earlier one."""
    await conn.execute(
        "INSERT INTO webhook_events (id, crm_id, user_id, source, event_timestamp, received_at, result, detail,"
        " payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET"
        " crm_id = excluded.crm_id, user_id = excluded.user_id, source = excluded.source,"
        " event_timestamp = excluded.event_timestamp, received_at = excluded.received_at,"
        " result = excluded.result, detail = excluded.detail, payload = excluded.payload",
        event_id, crm_id, user_id, source, timestamp or None, now, result, detail, payload,
    )  # fmt: skip


async def prune(db: Database, before: str, batch: int = PRUNE_BATCH) -> int:
    """Delete events received before `before`, one batch per transaction; return how many went."""
    total = 0
    while True:
        # The write lock is fair: writers that queued up during a batch go before the next one.
        async with db.transaction() as conn:
            deleted = await conn.execute(_PRUNE, before, batch)
        total += deleted
        if deleted < batch:
            return total
