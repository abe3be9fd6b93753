"""Named progress markers, such as how far the reconcile sweep has read."""

from __future__ import annotations

import aiosqlite

from ..db import Database, fetch_one


async def get(db: Database, name: str) -> str | None:
    """The stored value, or None."""
    row = await fetch_one(db.reader, "SELECT value FROM checkpoints WHERE name = ?", (name,))
    return row[0] if row else None


async def put(conn: aiosqlite.Connection, name: str, value: str, now: str) -> None:
    """Store a value inside the caller's transaction."""
    await conn.execute(
        "INSERT INTO checkpoints (name, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (name, value, now),
    )
