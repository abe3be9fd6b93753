"""Waiting for our own pushes in flight, so that news from the CRM lands after their answers."""

from __future__ import annotations

import asyncio
import time

from ..store import jobs
from ..store.database import Database

SETTLE_SECONDS = 5.0  # how long CRM news about a user waits for that user's push in flight
POLL = 0.05


async def settled(db: Database, user_ids: list[str], timeout: float = SETTLE_SECONDS) -> bool:
    """Wait until no push for these users is on the wire (on any replica); False if one still is at timeout."""
    deadline = time.monotonic() + timeout
    while await jobs.pushing(db, user_ids, db.now()):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL)
    return True
