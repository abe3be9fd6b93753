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
from datetime import timedelta
from typing import Any

from ..crm.errors import CrmError
from ..store import leases, scans, timers
from ..store.errors import StoreError
from ..timeutil import isoformat, parse_iso
from .engine import SyncEngine
from .lifecycle import crm_lost
from .record_pages import apply_page

logger = logging.getLogger(__name__)

FULL, IMPORT = "full_reconcile", "import"
TIMER = "timer:full_reconcile"  # the cluster-wide timer of CRMSYNC_FULL_RECONCILE_INTERVAL
LEASE_SECONDS = 60.0
MISSING_PAGE = 500
LOST = "A full reconcile found {} contacts the CRM no longer has; each is failed, to create again or delete."


class Scans:
    """Starts scans in the background, at most one of each kind here and in the cluster."""

    def __init__(self, engine: SyncEngine) -> None:
        self._engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._starting = asyncio.Lock()  # two starts here at once would both hold the (same-owner) lease

    @property
    def engine(self) -> SyncEngine:
        """The engine the scans run on."""
        return self._engine

    async def start(self, kind: str) -> bool:
        """Start (or resume) a scan unless one of its kind runs here or on another replica; True when started.

        The scan's lease is taken and its running state saved before this returns, so a status read
        right after shows this scan, not the last one.
        """
        async with self._starting:
            if (task := self._tasks.get(kind)) is not None and not task.done():
                return False
            if not await self._hold(kind):
                return False
            try:
                state = await self._begin(kind)
            except BaseException:
                with contextlib.suppress(StoreError):
                    await leases.release(self._engine.db, f"scan:{kind}", self._engine.replica_id)
                raise
            self._tasks[kind] = asyncio.create_task(self._run(kind, state), name=f"scan-{kind}")
            return True

    async def abandoned(self, kind: str) -> bool:
        """True when a scan stopped half-way (its replica died, or the CRM failed) and nobody runs it now."""
        saved = await scans.state(self._engine.db, kind)
        holder = await leases.holder(self._engine.db, f"scan:{kind}", self._engine.db.now())
        return saved is not None and saved.get("state") == "running" and holder is None

    async def status(self, kind: str) -> dict[str, Any]:
        """The scan's saved state: idle when it never ran."""
        return await scans.state(self._engine.db, kind) or {"scan": kind, "state": "idle"}

    async def close(self) -> None:
        """Stop scans in progress; their state is saved, so they resume next time."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _total(self) -> int | None:
        """How many records the CRM holds, for a progress bar; None when it does not say, or cannot now."""
        try:
            return await self._engine.crm.count_contacts()
        except CrmError:
            return None

    async def _hold(self, kind: str) -> bool:
        db, now = self._engine.db, self._engine.db.now()
        return await leases.acquire(db, f"scan:{kind}", self._engine.replica_id, _after(now, LEASE_SECONDS), now)

    async def _begin(self, kind: str) -> dict[str, Any]:
        """The scan's state to run from, saved: a new scan, or the one that stopped half-way."""
        engine = self._engine
        state = await scans.state(engine.db, kind) or {}
        if state.get("state") != "running":  # a new scan; else resume where it stopped
            state = {"scan": kind, "state": "running", "started_at": engine.db.now(), "cursor": None,
                     "pages": 0, "counts": {}, "finished_at": None, "error": None}  # fmt: skip
            await scans.forget_seen(engine.db, kind)
            if kind == FULL and (interval := engine.config.full_reconcile_interval) > 0:
                now = engine.db.now()
                await timers.put_off(engine.db, TIMER, now, _after(now, interval))  # today's turn is done
        state["error"] = None
        await self._save(kind, state)
        return state

    async def _run(self, kind: str, state: dict[str, Any]) -> None:
        engine = self._engine
        try:
            if state.get("total") is None:  # for a progress bar; asked here, not while the start is answered
                state["total"] = await self._total()
            logger.info(
                "scan_started", extra={"scan": kind, "replica_id": engine.replica_id, "resumed_at_page": state["pages"]}
            )
            await self._pages(kind, state)
            if kind == FULL:
                await self._missing(state)
            await self._save(
                kind, {**state, "state": "done", "finished_at": engine.db.now(), "cursor": None, "error": None}
            )
            logger.info("scan_done", extra={"scan": kind, "replica_id": engine.replica_id, **state["counts"]})
        except (CrmError, StoreError) as exc:  # stopped: the next start resumes from the saved page
            message = getattr(exc, "message", str(exc))
            logger.warning("scan_interrupted", extra={"scan": kind, "error": message})
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
            page = await engine.crm.list_contacts(None, state["cursor"])
            cursor = page.next_cursor
            counts["seen"] = counts.get("seen", 0) + page.seen
            # A backfill is a person asking for every record; CRMSYNC_IMPORT_CRM_CREATES governs the rest.
            imports = kind == IMPORT or engine.config.import_crm_creates
            jobs = await apply_page(engine, page, read_since, counts, None, imports)
            if kind == FULL:
                seen = [c.crm_id for c in page.contacts] + [crm_id for crm_id in page.malformed if crm_id]
                await scans.note_seen(engine.db, kind, seen)
            if jobs:
                engine.wake()
            state.update(cursor=cursor, pages=state["pages"] + 1)
            await self._save(kind, state)
            if not cursor or not page.seen:
                return

    async def _missing(self, state: dict[str, Any]) -> None:
        """Users linked before the scan began whose record the CRM did not list: deleted in the CRM."""
        engine, after, found = self._engine, 0, 0
        counts: dict[str, int] = state["counts"]
        while page := await scans.unseen_linked(engine.db, FULL, state["started_at"], after, MISSING_PAGE):
            if not await self._hold(FULL):
                raise StoreError("the scan's lease was taken over by another replica")
            for seq, user_id, crm_id in page:
                found += await crm_lost(engine, user_id, crm_id, "full reconcile", alert=False)
                counts["missing"] = counts.get("missing", 0) + 1
                after = seq
            await self._save(FULL, state)
        if found:  # one alert for the lot: a CRM that lost its records must not send a mail per contact
            engine.alerter.sync_failed("scan", FULL, None, LOST.format(found))

    async def _save(self, kind: str, state: dict[str, Any]) -> None:
        await scans.save(self._engine.db, kind, state, self._engine.db.now())
        if self._engine.events:
            self._engine.events.publish({"type": "scan", **{k: v for k, v in state.items() if k != "cursor"}})


def _after(moment: str, seconds: float) -> str:
    return isoformat(parse_iso(moment) + timedelta(seconds=seconds))
