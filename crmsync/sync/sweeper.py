"""The reconcile sweep's schedule: one sweep at a time in the whole cluster, under a lease.

The replica that holds the lease sweeps and extends it page by page; the others skip their turn.
If that replica dies, its lease runs out and the next replica whose turn comes takes over; the
checkpoint is in the database, so the sweep goes on from where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from ..crm.errors import CrmError
from ..keys import config_key, engine_key, sweeper_key
from ..store import leases
from ..store.errors import StoreError
from ..timeutil import isoformat, parse_iso
from .engine import SyncEngine
from .reconcile import sweep

logger = logging.getLogger(__name__)

LEASE = "reconcile_sweep"
LEASE_SECONDS = 30.0  # extended before every page, so only a replica that stopped loses it


class Sweeper:
    """Runs the sweep on demand and every CRMSYNC_RECONCILE_INTERVAL seconds, when it holds the lease."""

    def __init__(self, engine: SyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while this replica sweeps."""
        return self._lock.locked()

    def start_now(self) -> bool:
        """Start a sweep in the background unless one is running here; True when started."""
        if self.running or (self._task is not None and not self._task.done()):
            return False
        self._task = asyncio.create_task(self._run_once())
        return True

    async def _hold(self) -> bool:
        db = self._engine.db
        now = db.now()
        until = isoformat(parse_iso(now) + timedelta(seconds=LEASE_SECONDS))
        return await leases.acquire(db, LEASE, self._engine.replica_id, until, now)

    async def _run_once(self) -> None:
        async with self._lock:
            try:
                if not await self._hold():
                    logger.info("reconcile_sweep_skipped", extra={"reason": "another replica is sweeping"})
                    return
                logger.info("reconcile_sweep_started", extra={"replica_id": self._engine.replica_id})
                await sweep(self._engine, on_page=self._extend)
            except CrmError as exc:
                logger.warning("reconcile_sweep_failed", extra={"error": exc.message})
            except StoreError as exc:
                logger.warning("reconcile_sweep_failed", extra={"error": str(exc)})
            except Exception:  # the periodic sweep must outlive any one bad page
                logger.exception("reconcile_sweep_crashed")
            finally:
                with contextlib.suppress(StoreError):
                    await leases.release(self._engine.db, LEASE, self._engine.replica_id)

    async def _extend(self) -> None:
        if not await self._hold():
            raise StoreError("the sweep's lease was taken over by another replica")

    async def periodic(self) -> None:
        """Sweep forever at the configured interval."""
        while True:
            await asyncio.sleep(self._interval)
            await self._run_once()

    async def close(self) -> None:
        """Cancel a sweep in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def sweeper_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the periodic sweep, when the interval is above 0."""
    sweeper = Sweeper(app[engine_key], app[config_key].reconcile_interval)
    app[sweeper_key] = sweeper
    timer = asyncio.create_task(sweeper.periodic()) if app[config_key].reconcile_interval > 0 else None
    yield
    if timer is not None:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
    await sweeper.close()
