"""The replicas table: every crmsync process serving this database, heartbeating while it lives."""

from __future__ import annotations

from typing import Any

import attrs

from . import leases
from .database import Database, Row

CHANNEL = "crmsync_replicas"  # notified when a replica joins, leaves or is buried: the others look again


@attrs.frozen
class Replica:
    """One process, as it last reported itself."""

    id: str
    host: str
    pid: int
    address: str | None
    started_at: str
    heartbeat_at: str
    jobs_running: int
    jobs_done: int
    subscribers: int
    pacer_share: float | None

    @classmethod
    def from_row(cls, row: Row) -> Replica:
        """Build from a replicas row."""
        return cls(**{name: row[name] for name in _FIELD_NAMES})

    def public(self) -> dict[str, Any]:
        """The JSON GET /cluster shows."""
        return attrs.asdict(self)


_FIELD_NAMES = tuple(field.name for field in attrs.fields(Replica))


async def register(db: Database, replica: Replica) -> None:
    """Add this process to the table."""
    async with db.transaction(durable=False) as conn:
        await conn.execute(
            "INSERT INTO replicas (id, host, pid, address, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $5)",
            replica.id, replica.host, replica.pid, replica.address, replica.started_at,
        )  # fmt: skip
        await conn.notify(CHANNEL, replica.id)


async def heartbeat(
    db: Database, replica_id: str, now: str, running: int, done: int, subscribers: int, share: float | None
) -> bool:
    """Report this process alive with its counters; False when its row is gone (others took it for dead)."""
    async with db.transaction(durable=False) as conn:
        updated = await conn.execute(
            "UPDATE replicas SET heartbeat_at = $1, jobs_running = $2, jobs_done = $3, subscribers = $4,"
            " pacer_share = $5 WHERE id = $6",
            now, running, done, subscribers, share, replica_id,
        )  # fmt: skip
    return updated == 1


async def live(db: Database, since: str) -> list[Replica]:
    """The replicas that heartbeated at `since` or later, oldest first."""
    rows = await db.fetch("SELECT * FROM replicas WHERE heartbeat_at >= $1 ORDER BY started_at, id", since)
    return [Replica.from_row(row) for row in rows]


async def bury(db: Database, before: str) -> list[str]:
    """Remove replicas silent since `before` (dead) and free at once the leases (jobs', the sweep's, a
    scan's) of every replica that is not in the table (buried now or earlier, or gone without releasing
    them); return the ids buried now."""
    async with db.transaction(durable=False) as conn:
        dead = [row[0] for row in await conn.fetch("DELETE FROM replicas WHERE heartbeat_at < $1 RETURNING id", before)]
        freed = await conn.execute(
            "UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
            " AND lease_owner NOT IN (SELECT id FROM replicas)"
        )
        if freed:
            await conn.notify("crmsync_jobs")
        await leases.free_orphaned(conn)
        if dead:
            await conn.notify(CHANNEL)
    return dead


async def leave(db: Database, replica_id: str) -> None:
    """Remove this process from the table (a graceful stop)."""
    async with db.transaction(durable=False) as conn:
        await conn.execute("DELETE FROM replicas WHERE id = $1", replica_id)
        await conn.notify(CHANNEL)
