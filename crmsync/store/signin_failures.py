"""Failed sign-ins counted per key and time slice, in the database so that every replica sees them."""

from __future__ import annotations

from .database import Database

Keys = tuple[str, str]  # the email's key and the client address's key


async def recent(db: Database, keys: Keys, since: int) -> list[tuple[str, int, int]]:
    """(key, bucket, failures) of the keys' slices that start at `since` (Unix ms) or later, oldest first."""
    rows = await db.fetch(
        "SELECT key, bucket, failures FROM signin_failures WHERE key IN ($1, $2) AND bucket >= $3 ORDER BY bucket",
        *keys, since,
    )  # fmt: skip
    return [(row[0], int(row[1]), int(row[2])) for row in rows]


async def record(db: Database, keys: Keys, bucket: int, prune_before: int) -> None:
    """Count one failure for each key in a slice, and drop every slice that starts before prune_before."""
    async with db.transaction() as conn:
        # Each row is deleted once, through the bucket index, so pruning costs little per failure.
        await conn.execute("DELETE FROM signin_failures WHERE bucket < $1", prune_before)
        await conn.executemany(
            "INSERT INTO signin_failures (key, bucket, failures) VALUES ($1, $2, 1)"
            " ON CONFLICT (key, bucket) DO UPDATE SET failures = signin_failures.failures + 1",
            [(key, bucket) for key in keys],
        )


async def clear(db: Database, key: str) -> None:
    """Forget a key's failures."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM signin_failures WHERE key = $1", key)
