"""Cluster-wide timers: the moment each one's next turn is due, kept with the checkpoints.

Kept apart from the leases: a lease belongs to a replica and goes with it, a timer's schedule
belongs to the cluster and outlives every replica (a daily turn must come even if replicas restart
more often than daily).
"""

from __future__ import annotations

from .database import Database


async def take_turn(db: Database, name: str, now: str, next_due: str) -> bool:
    """Take the timer's turn if it is due, moving it on to next_due; True for the one caller that took it.

    The first call arms the timer for next_due instead, and a due further off than next_due (the
    interval was shortened) is brought forward to it. Moments are fixed-width ISO strings: they
    compare as text like the moments they name.
    """
    async with db.transaction(durable=False) as conn:
        await conn.execute(
            "INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE"
            " SET value = excluded.value, updated_at = excluded.updated_at WHERE checkpoints.value > excluded.value",
            name, next_due, now,
        )  # fmt: skip
        taken = await conn.fetchval(
            "UPDATE checkpoints SET value = $2, updated_at = $3 WHERE name = $1 AND value <= $4 RETURNING name",
            name, next_due, now, now,
        )  # fmt: skip
    return taken is not None


async def put_off(db: Database, name: str, now: str, next_due: str) -> None:
    """Move the timer's next turn out to next_due (its work was just done on demand)."""
    async with db.transaction(durable=False) as conn:
        await conn.execute(
            "UPDATE checkpoints SET value = $2, updated_at = $3 WHERE name = $1 AND value < $2",
            name, next_due, now,
        )  # fmt: skip
