"""This replica among the others on the same database: registration, heartbeat, and what follows from it.

Every heartbeat reports the replica's counters, reads which replicas are alive, gives the CRM pacer
its share of the rate limit (1 / live replicas), tells the event bus whether dashboards listen
elsewhere, and buries replicas silent for too long (freeing their jobs' leases at once). A replica
joining, leaving or buried is notified to all, which beat at once: the shares rebalance in
milliseconds, not a heartbeat later (until then the cluster would pace above the CRM's limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from .keys import config_key, crm_key, db_key, engine_key, events_key, membership_key, replica_key
from .store import replicas
from .store.errors import StoreError
from .store.replicas import Replica
from .timeutil import isoformat, parse_iso

logger = logging.getLogger(__name__)


def new_replica_id() -> str:
    """A name for this process, readable in logs: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Membership:
    """Keeps this replica's row alive and the cluster-wide settings that depend on who is alive."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self.live: list[Replica] = []
        self._changed = asyncio.Event()  # another replica joined or left: beat now
        app[db_key].listen(replicas.CHANNEL, lambda _: self._changed.set())
        app[db_key].on_listening(self._changed.set)  # a join notified before we listened was missed

    @property
    def replica_id(self) -> str:
        """This replica's id."""
        return self._app[replica_key]

    async def join(self) -> None:
        """Register, then beat once so that the pacer's share is right before the first push."""
        config, db = self._app[config_key], self._app[db_key]
        now = db.now()
        address = f"{config.host}:{config.port}"
        me = Replica(self.replica_id, socket.gethostname(), os.getpid(), address, now, now, 0, 0, 0, None)
        await replicas.register(db, me)
        logger.info("replica_joined", extra={"replica_id": self.replica_id, "database": db.describe()})
        await self.beat()

    async def beat(self) -> None:
        """One heartbeat: report, look around, rebalance, bury the dead."""
        config, db = self._app[config_key], self._app[db_key]
        bus, pacer = self._app[events_key], self._app[crm_key].transport.pacer
        await db.measure_clock()
        now = db.now()
        alive_since = isoformat(parse_iso(now) - timedelta(seconds=config.replica_dead_after))
        engine = self._app.get(engine_key)  # the engine starts after the first beat
        running, done = (len(engine.dispatcher.running), engine.dispatcher.done) if engine else (0, 0)
        present = await replicas.heartbeat(
            db, self.replica_id, now, running, done, bus.local_listeners, pacer.share
        )  # fmt: skip
        if not present:  # buried while paused or partitioned: come back under the same name
            await self.join()
            return
        if dead := await replicas.bury(db, alive_since):
            logger.warning("replicas_buried", extra={"replica_ids": dead, "silent_for": config.replica_dead_after})
        self.live = await replicas.live(db, alive_since)
        share = 1 / max(1, len(self.live))
        if share != pacer.share:
            logger.info("pacer_share_changed", extra={"replica_id": self.replica_id, "share": round(share, 4),
                                                      "live_replicas": len(self.live)})  # fmt: skip
            pacer.share = share
        bus.remote_listeners = sum(r.subscribers for r in self.live if r.id != self.replica_id)

    async def run(self) -> None:
        """Heartbeat forever, and at once when membership changed; a failed beat is retried at the next one."""
        interval = self._app[config_key].replica_heartbeat
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), interval)
            self._changed.clear()
            try:
                await self.beat()
            except StoreError as exc:
                logger.warning("heartbeat_failed", extra={"replica_id": self.replica_id, "error": str(exc)})

    async def leave(self) -> None:
        """Remove this replica's row (its leases were released by the dispatcher)."""
        with contextlib.suppress(StoreError):
            await replicas.leave(self._app[db_key], self.replica_id)
        logger.info("replica_left", extra={"replica_id": self.replica_id})


async def membership_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (before the engine's: the pacer knows its share before the first push)."""
    membership = app[membership_key] = Membership(app)
    await membership.join()
    task = asyncio.create_task(membership.run(), name="heartbeat")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await membership.leave()
