"""Long scans of the CRM (the full reconcile, the import): their state, resumable, and what they have seen."""

from __future__ import annotations

import json
from typing import Any

from . import checkpoints
from .database import Database


async def state(db: Database, scan: str) -> dict[str, Any] | None:
    """The scan's last saved state (cursor, counts, times), or None when it never ran."""
    value = await checkpoints.get(db, f"scan:{scan}")
    return json.loads(value) if value else None


async def save(db: Database, scan: str, value: dict[str, Any], now: str) -> None:
    """Save the scan's state (after each page: a scan that stops resumes from here)."""
    async with db.transaction() as conn:
        await checkpoints.put(conn, f"scan:{scan}", json.dumps(value), now)


async def forget_seen(db: Database, scan: str) -> None:
    """Start the list of records seen afresh."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM scan_seen WHERE scan = $1", scan)


async def note_seen(db: Database, scan: str, crm_ids: list[str]) -> None:
    """Note the records a page showed."""
    if crm_ids:
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO scan_seen (scan, crm_id) VALUES ($1, $2) ON CONFLICT (scan, crm_id) DO NOTHING",
                [(scan, crm_id) for crm_id in crm_ids],
            )


async def unseen_linked(
    db: Database, scan: str, linked_before: str, after: int, limit: int
) -> list[tuple[int, str, str]]:
    """(seq, user id, crm_id) of users linked before the scan began whose record it did not see, by seq."""
    rows = await db.fetch(
        "SELECT u.seq, u.id, u.crm_id FROM users u WHERE u.crm_id IS NOT NULL AND u.deleted_at IS NULL"
        " AND u.linked_at < $1 AND u.seq > $2 AND NOT EXISTS"
        " (SELECT 1 FROM scan_seen s WHERE s.scan = $3 AND s.crm_id = u.crm_id) ORDER BY u.seq LIMIT $4",
        linked_before, after, scan, limit,
    )  # fmt: skip
    return [(int(row[0]), row[1], row[2]) for row in rows]
