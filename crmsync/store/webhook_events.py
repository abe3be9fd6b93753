"""The webhook_events table: every CRM event received, what became of it, and its retention."""

from __future__ import annotations

from . import jobs, users
from .database import Connection, Database
from .users import User

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


async def seen_and_pushing(conn: Connection, event_id: str, user_id: str | None, now: str) -> tuple[Seen, bool]:
    """In one round trip: what became of an event received before (None: new), and whether a replica holds
    a live lease on the user's push (jobs.in_flight). Call it after locking the user's row, so that it
    sees what a transaction that held the lock committed."""
    row = await conn.fetchrow(
        "SELECT (SELECT result FROM webhook_events WHERE id = $1), (SELECT user_id FROM webhook_events WHERE id = $1),"
        " EXISTS (SELECT 1 FROM sync_jobs WHERE kind = $2 AND entity_id = $3 AND state = 'queued'"
        " AND lease_until > $4)",
        event_id, jobs.USER_PUSH, user_id or "", now,
    )  # fmt: skip
    return (None if row[0] is None else (row[0], row[1])), bool(row[2])


Seen = tuple[str, str | None] | None  # (result, user id) of an event received before; None: new


async def lock_user_for(conn: Connection, crm_id: str, event_id: str, now: str) -> tuple[User | None, Seen, bool]:
    """For an event about crm_id: the linked user (a tombstone too) locked, and seen_and_pushing for it.

    On a server the row lock is its own statement, first: the reads after it must see what the lock's
    previous holder committed. With one writer (SQLite) nothing commits meanwhile, so one statement reads
    all three, a round trip less per webhook.
    """
    if not conn.one_writer:
        user = await users.lock_by_crm_id(conn, crm_id)
        live = user is not None and user.deleted_at is None
        seen, pushing = await seen_and_pushing(conn, event_id, user.id if live else None, now)
        return user, seen, pushing
    (row,) = await conn.fetch(_USER_SEEN_PUSHING, crm_id, event_id, jobs.USER_PUSH, now)  # always one row
    user = None if row["id"] is None else User.from_row(row)
    seen = None if row["seen_result"] is None else (row["seen_result"], row["seen_user"])
    return user, seen, bool(row["pushing"])


# One row whether or not a user is linked; its columns are the user's (NULL when none) and the three answers.
_USER_SEEN_PUSHING = (
    "SELECT u.*, (SELECT result FROM webhook_events WHERE id = $2) AS seen_result,"
    " (SELECT user_id FROM webhook_events WHERE id = $2) AS seen_user,"
    " EXISTS (SELECT 1 FROM sync_jobs WHERE kind = $3 AND entity_id = u.id AND u.deleted_at IS NULL"
    " AND state = 'queued' AND lease_until > $4) AS pushing"
    " FROM (SELECT 1) AS one LEFT JOIN users AS u ON u.crm_id = $1"
)


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
