"""Pull the CRM's state and merge it in: one record on demand, or a sweep of everything changed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..crm.errors import CrmError, CrmNotFound
from ..errors import Conflict, DuplicateEmail, NotFound
from ..events import user_event
from ..keys import config_key, engine_key, sweeper_key
from ..store import checkpoints, users
from ..store.crm_changes import Applied, CrmChange, apply_crm_record, record_change
from ..store.database import Connection
from ..store.user_sync import mark_deleted_in_crm
from ..timeutil import now_iso
from .engine import SyncEngine
from .user_push import DELETED

logger = logging.getLogger(__name__)

CHECKPOINT = "crm_users_updated_since"
SETTLE_SECONDS = 5.0  # how long CRM news about a user waits for that user's push in flight


async def reconcile_user(engine: SyncEngine, user_id: str) -> Applied:
    """Fetch the user's CRM record now and merge it; raises CrmError when the CRM cannot answer."""
    user = await users.get(engine.db, user_id)
    if user is None:
        raise NotFound("No user with this id.")
    if user.crm_id is None:
        raise Conflict("This user is not in the CRM yet; it will be once its sync succeeds.")
    read_since = now_iso()
    try:
        record = await engine.crm.get_user(user.crm_id)
    except CrmNotFound:
        await mark_deleted(engine, user.id)
        return Applied((await users.get(engine.db, user_id)) or user, None)
    await engine.inflight.settled(user.id, SETTLE_SECONDS)
    async with engine.db.transaction() as conn:
        applied = await apply_crm_record(conn, user.id, record_change(record, read_since), "reconcile")
    if applied is None:
        raise NotFound("No user with this id.")
    if applied.job_id is not None:
        engine.pool.submit(applied.job_id)
    if engine.events:
        engine.events.publish(user_event(applied.user))
    changed = sorted(applied.merged.changed) if applied.merged else []
    logger.info("user_reconciled", extra={"user_id": user.id, "crm_id": user.crm_id, "changed_fields": changed})
    return applied


async def mark_deleted(engine: SyncEngine, user_id: str) -> None:
    """A record gone from the CRM is failed for good, and never silently created again."""
    async with engine.db.transaction() as conn:
        user = await mark_deleted_in_crm(conn, user_id, DELETED, now_iso())
    if user is not None and engine.events:
        engine.events.publish(user_event(user))
    logger.error("user_deleted_in_crm", extra={"user_id": user_id})


async def sweep(engine: SyncEngine) -> dict[str, int]:
    """Merge every CRM record changed since the stored checkpoint, a page per transaction."""
    since = await checkpoints.get(engine.db, CHECKPOINT)
    cursor: str | None = None
    counts = {"seen": 0, "changed": 0, "unknown": 0, "rejected": 0}
    while True:
        read_since = now_iso()
        records, cursor = await engine.crm.list_users(since, cursor)
        counts["seen"] += len(records)
        jobs = await _apply_page(engine, records, read_since, counts)
        for job_id in jobs:
            engine.pool.submit(job_id)
        if not cursor or not records:
            break
    logger.info("reconcile_sweep_done", extra=counts)
    return counts


async def _apply_page(
    engine: SyncEngine, records: list[dict[str, Any]], read_since: str, counts: dict[str, int]
) -> list[int]:
    """Apply one page in one transaction; a record we cannot apply is skipped, not fatal to the rest."""
    crm_ids = [r["crm_id"] for r in records if isinstance(r, dict) and isinstance(r.get("crm_id"), str)]
    linked = await users.ids_by_crm_id(engine.db, crm_ids)
    for user_id in linked.values():
        await engine.inflight.settled(user_id, SETTLE_SECONDS)  # our own push's answer comes first
    changes: list[tuple[str, str, CrmChange]] = []  # (user id, crm_id, change), in lock order
    checkpoint: str | None = None
    for record in records:
        try:
            change = record_change(record, read_since)
        except (AttributeError, ValueError):
            counts["rejected"] += 1
            continue
        checkpoint = max(checkpoint or "", change.at)
        if (user_id := linked.get(record.get("crm_id"))) is None:
            counts["unknown"] += 1
            continue
        changes.append((user_id, record["crm_id"], change))
    changes.sort(key=lambda item: users.lock_order(item[1], item[0]))  # the order every transaction keeps

    async def apply(conn: Connection) -> tuple[list[int], int, int]:
        jobs: list[int] = []
        changed = rejected = 0
        for user_id, crm_id, change in changes:
            try:
                async with conn.savepoint():
                    applied = await apply_crm_record(conn, user_id, change, "reconcile")
            except (DuplicateEmail, ValueError) as exc:
                rejected += 1
                logger.warning("reconcile_record_rejected", extra={"crm_id": crm_id, "error": str(exc)})
                continue
            changed += bool(applied and applied.merged and applied.merged.changed)
            if applied and applied.job_id is not None:
                jobs.append(applied.job_id)
        if checkpoint:
            await checkpoints.put(conn, CHECKPOINT, checkpoint, now_iso())
        return jobs, changed, rejected

    jobs, changed, rejected = await engine.db.run(apply)
    counts["changed"] += changed
    counts["rejected"] += rejected
    return jobs


class Sweeper:
    """Runs one sweep at a time, on demand and every CRMSYNC_RECONCILE_INTERVAL seconds."""

    def __init__(self, engine: SyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while a sweep is in progress."""
        return self._lock.locked()

    def start_now(self) -> bool:
        """Start a sweep in the background unless one is running; True when started."""
        if self.running or (self._task is not None and not self._task.done()):
            return False
        self._task = asyncio.create_task(self._run_once())
        return True

    async def _run_once(self) -> None:
        async with self._lock:
            try:
                await sweep(self._engine)
            except CrmError as exc:
                logger.warning("reconcile_sweep_failed", extra={"error": exc.message})
            except Exception:  # the periodic sweep must outlive any one bad page
                logger.exception("reconcile_sweep_crashed")

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
