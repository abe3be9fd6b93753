"""The full reconcile's timer (CRMSYNC_FULL_RECONCILE_INTERVAL), kept by the cluster, not by each replica.

The next turn's due moment lives in the database (store/timers.py): at each tick every replica asks
for the turn, and the one whose conditional update moves it on runs the reconcile, so N replicas run
it once per interval, one at a time. A tick also resumes a full reconcile left half-way (its replica
died, or the CRM failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from ..keys import config_key, engine_key, scans_key
from ..store import timers
from ..store.errors import StoreError
from ..timeutil import isoformat, parse_iso
from .scans import FULL, TIMER, Scans

logger = logging.getLogger(__name__)


async def keep_timer(scanner: Scans, interval: float) -> None:
    """Run the full reconcile whenever the cluster's turn falls to this replica; resume one left half-way."""
    engine = scanner.engine
    while True:
        await asyncio.sleep(min(interval, engine.config.full_reconcile_tick))
        try:
            now = engine.db.now()
            next_due = isoformat(parse_iso(now) + timedelta(seconds=interval))
            if await timers.take_turn(engine.db, TIMER, now, next_due):
                extra = {"replica_id": engine.replica_id, "at": now, "next_due": next_due}
                logger.info("full_reconcile_due", extra=extra)
                await scanner.start(FULL)
            elif await scanner.abandoned(FULL):
                logger.info("full_reconcile_resumed", extra={"replica_id": engine.replica_id})
                await scanner.start(FULL)
        except StoreError as exc:  # the database is down: the next tick asks again
            logger.warning("full_reconcile_timer_failed", extra={"error": str(exc)})


async def scans_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: scans on demand, and the full reconcile's timer unless the interval is 0."""
    scanner = app[scans_key] = Scans(app[engine_key])
    interval = app[config_key].full_reconcile_interval
    timer = asyncio.create_task(keep_timer(scanner, interval), name="full-reconcile-timer") if interval > 0 else None
    yield
    if timer is not None:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
    await scanner.close()
