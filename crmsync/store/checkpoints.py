"""Named progress markers, such as how far the reconcile sweep has read."""

from __future__ import annotations

from .database import Connection, Database


async def get(db: Database, name: str) -> str | None:
    """The stored value, or None."""
    return await db.fetchval("SELECT value FROM checkpoints WHERE name = $1", name)


async def put(conn: Connection, name: str, value: str, now: str) -> None:
    """Store a value inside the caller's transaction."""
    await conn.execute(
        "INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        name, value, now,
    )  # fmt: skip
