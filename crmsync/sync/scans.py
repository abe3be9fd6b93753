"""Reading every CRM record, page by page: the full reconcile and the import (backfill).

Both merge each record, link or import records nobody here is linked to, and save their state after
every page, so a scan that stops (a restart, a replica that died) resumes from where it was. The
full reconcile then handles every user linked before it began whose record the CRM no longer has
as deleted in the CRM. One scan of a kind runs at a time in the cluster (a lease); progress goes
to /events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import web

from ..crm.errors import CrmError
from ..keys import config_key, engine_key, scans_key
from ..store import leases, scans
from ..store.errors import StoreError
from ..timeutil import isoformat, parse_iso
from .engine import SyncEngine
from .lifecycle import crm_lost
from .record_pages import apply_page

logger = logging.getLogger(__name__)

FULL, IMPORT = "full_reconcile", "import"
LEASE_SECONDS = 60.0
MISSING_PAGE = 500


class Scans:
    """Starts scans in the background, at most one of each kind here and in the cluster."""

    def __init__(self, engine: SyncEngine) -> None:
        self._engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, kind: str) -> bool:
        """Start (or resume) a scan unless one of its kind runs here; True when started."""
        if (task := self._tasks.get(kind)) is not None and not task.done():
            return False
        self._tasks[kind] = asyncio.create_task(self._run(kind), name=f"scan-{kind}")
        return True

    async def status(self, kind: str) -> dict[str, Any]:
        """The scan's saved state: idle when it never ran."""
        return await scans.state(self._engine.db, kind) or {"scan": kind, "state": "idle"}

    async def periodic_full(self, interval: float) -> None:
        """A full reconcile every `interval` seconds (whichever replica's turn comes first runs it)."""
        while True:
            await asyncio.sleep(interval)
            self.start(FULL)

    async def close(self) -> None:
        """Stop scans in progress; their state is saved, so they resume next time."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _hold(self, kind: str) -> bool:
        db = self._engine.db
        until = isoformat(parse_iso(db.now()) + timedelta(seconds=LEASE_SECONDS))
        return await leases.acquire(db, f"scan:{kind}", self._engine.replica_id, until, db.now())

    async def _run(self, kind: str) -> None:
        engine = self._engine
        state: dict[str, Any] = {}
        try:
            if not await self._hold(kind):
                logger.info("scan_skipped", extra={"scan": kind, "reason": "another replica runs it"})
                return
            state = await scans.state(engine.db, kind) or {}
            if state.get("state") != "running":  # a new scan; else resume where it stopped
                state = {"scan": kind, "state": "running", "started_at": engine.db.now(), "cursor": None,
                         "pages": 0, "counts": {}, "finished_at": None, "error": None}  # fmt: skip
                await scans.forget_seen(engine.db, kind)
            logger.info("scan_started", extra={"scan": kind, "resumed_at_page": state["pages"]})
            await self._pages(kind, state)
            if kind == FULL:
                await self._missing(state)
            await self._save(
                kind, {**state, "state": "done", "finished_at": engine.db.now(), "cursor": None, "error": None}
            )
            logger.info("scan_done", extra={"scan": kind, **state["counts"]})
        except (CrmError, StoreError) as exc:  # stopped: the next start resumes from the saved page
            message = getattr(exc, "message", str(exc))
            logger.warning("scan_interrupted", extra={"scan": kind, "error": message})
            if state:
                with contextlib.suppress(StoreError):
                    await self._save(kind, {**state, "state": "running", "error": message})
        except Exception:  # a bug: logged, and the scan can be started again
            logger.exception("scan_crashed", extra={"scan": kind})
        finally:
            with contextlib.suppress(StoreError):
                await leases.release(engine.db, f"scan:{kind}", engine.replica_id)

    async def _pages(self, kind: str, state: dict[str, Any]) -> None:
        engine = self._engine
        counts: dict[str, int] = state["counts"]
        while True:
            if not await self._hold(kind):
                raise StoreError("the scan's lease was taken over by another replica")
            read_since = engine.db.now()
            records, cursor = await engine.crm.list_users(None, state["cursor"])
            counts["seen"] = counts.get("seen", 0) + len(records)
            jobs = await apply_page(engine, records, read_since, counts, None, engine.config.import_crm_creates)
            if kind == FULL:
                await scans.note_seen(engine.db, kind, [r["crm_id"] for r in records if isinstance(r, dict)
                                                        and isinstance(r.get("crm_id"), str)])  # fmt: skip
            if jobs:
                engine.wake()
            state.update(cursor=cursor, pages=state["pages"] + 1)
            await self._save(kind, state)
            if not cursor or not records:
                return

    async def _missing(self, state: dict[str, Any]) -> None:
        """Users linked before the scan began whose record the CRM did not list: deleted in the CRM."""
        engine, after = self._engine, 0
        counts: dict[str, int] = state["counts"]
        while page := await scans.unseen_linked(engine.db, FULL, state["started_at"], after, MISSING_PAGE):
            for seq, user_id, crm_id in page:
                await crm_lost(engine, user_id, crm_id, "full reconcile")
                counts["missing"] = counts.get("missing", 0) + 1
                after = seq
            await self._save(FULL, state)

    async def _save(self, kind: str, state: dict[str, Any]) -> None:
        await scans.save(self._engine.db, kind, state, self._engine.db.now())
        if self._engine.events:
            self._engine.events.publish({"type": "scan", **{k: v for k, v in state.items() if k != "cursor"}})


async def scans_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: scans on demand, and the full reconcile every CRMSYNC_FULL_RECONCILE_INTERVAL."""
    scanner = app[scans_key] = Scans(app[engine_key])
    interval = app[config_key].full_reconcile_interval
    timer = asyncio.create_task(scanner.periodic_full(interval)) if interval > 0 else None
    yield
    if timer is not None:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
    await scanner.close()
