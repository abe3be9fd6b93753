"""Named leases: work that one replica at a time may do (the reconcile sweep), held until a moment."""

from __future__ import annotations

from .database import Connection, Database


async def acquire(db: Database, name: str, owner: str, until: str, now: str) -> bool:
    """Take or extend the lease when it is free, expired or already ours; True when we hold it."""
    async with db.transaction(durable=False) as conn:
        holder = await conn.fetchval(
            "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE"
            " SET owner = excluded.owner, until = excluded.until WHERE leases.until < $4 OR leases.owner = $2"
            " RETURNING owner",
            name, owner, until, now,
        )  # fmt: skip
    return holder == owner


async def release(db: Database, name: str, owner: str) -> None:
    """Give the lease up, if we hold it."""
    async with db.transaction(durable=False) as conn:
        await conn.execute("DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner)


async def holder(db: Database, name: str, now: str) -> str | None:
    """Who holds the lease now, or None."""
    return await db.fetchval("SELECT owner FROM leases WHERE name = $1 AND until >= $2", name, now)


async def free_orphaned(conn: Connection) -> int:
    """Inside a transaction: free the leases of replicas no longer in the table (dead, buried); how many."""
    return await conn.execute("DELETE FROM leases WHERE owner NOT IN (SELECT id FROM replicas)")
