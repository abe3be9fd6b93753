"""Retention of stored CRM webhook events (the events themselves are written by sync/webhooks.py)."""

from __future__ import annotations

from ..db import Database

PRUNE_BATCH = 1_000

# Oldest first through the received_at index; the LIMIT bounds how long one transaction holds the writer.
_PRUNE = """
DELETE FROM webhook_events WHERE rowid IN (
    SELECT rowid FROM webhook_events WHERE received_at < ? ORDER BY received_at LIMIT ?
)
"""


async def prune(db: Database, before: str, batch: int = PRUNE_BATCH) -> int:
    """Delete events received before `before`, one batch per transaction; return how many went."""
    total = 0
    while True:
        # The write lock is fair: writers that queued up during a batch go before the next one.
        async with db.transaction() as conn:
            cursor = await conn.execute(_PRUNE, (before, batch))
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch:
            return total
