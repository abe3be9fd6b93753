"""Pull the CRM's state and merge it in: one record on demand, or a sweep of everything changed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..crm.errors import CrmError, CrmNotFound
from ..errors import Conflict, NotFound
from ..keys import config_key, engine_key, sweeper_key
from ..store import checkpoints, users
from ..store.crm_changes import Applied, apply_crm_change, user_by_crm_id
from ..timeutil import isoformat, now_iso, parse_iso
from .engine import SyncEngine
from .merge import FIELDS
from .user_push import DELETED

logger = logging.getLogger(__name__)

CHECKPOINT = "crm_users_updated_since"


def _changed_at(record: dict[str, Any]) -> str:
    return isoformat(parse_iso(str(record["updated_at"])))


async def reconcile_user(engine: SyncEngine, user_id: str) -> Applied:
    """Fetch the user's CRM record now and merge it; raises CrmError when the CRM cannot answer."""
    user = await users.get(engine.db, user_id)
    if user is None:
        raise NotFound("No user with this id.")
    if user.crm_id is None:
        raise Conflict("This user is not in the CRM yet; it will be once its sync succeeds.")
    try:
        record = await engine.crm.get_user(user.crm_id)
    except CrmNotFound:
        await mark_deleted(engine, user.id)
        return Applied((await users.get(engine.db, user_id)) or user, None)
    async with engine.db.transaction() as conn:
        current = await user_by_crm_id(conn, user.crm_id)
        if current is None:
            raise NotFound("No user with this id.")
        applied = await apply_crm_change(conn, current, _fields(record), _changed_at(record), "reconcile")
    if applied.job_id is not None:
        engine.pool.submit(applied.job_id)
    changed = sorted(applied.merged.changed) if applied.merged else []
    logger.info("user_reconciled", extra={"user_id": user.id, "crm_id": user.crm_id, "changed_fields": changed})
    return applied


async def mark_deleted(engine: SyncEngine, user_id: str) -> None:
    """A record gone from the CRM is failed for good, and never silently created again."""
    async with engine.db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET sync_status = 'failed', last_error = ?, next_retry_at = NULL WHERE id = ?",
            (DELETED, user_id),
        )
        await conn.execute(
            "UPDATE sync_jobs SET state = 'failed', last_error = ? WHERE entity_id = ?", (DELETED, user_id)
        )
    logger.error("user_deleted_in_crm", extra={"user_id": user_id})


def _fields(record: dict[str, Any]) -> dict[str, str]:
    return {f: record[f] for f in FIELDS if isinstance(record.get(f), str)}


async def sweep(engine: SyncEngine) -> dict[str, int]:
    """Merge every CRM record changed since the stored checkpoint, a page per transaction."""
    since = await checkpoints.get(engine.db, CHECKPOINT)
    cursor: str | None = None
    counts = {"seen": 0, "changed": 0, "unknown": 0}
    while True:
        records, cursor = await engine.crm.list_users(since, cursor)
        jobs: list[int] = []
        async with engine.db.transaction() as conn:
            for record in records:
                counts["seen"] += 1
                user = await user_by_crm_id(conn, str(record.get("crm_id")))
                try:
                    changed_at = _changed_at(record)
                except (KeyError, ValueError):
                    changed_at = None
                if user is None or changed_at is None:
                    counts["unknown"] += 1
                    continue
                applied = await apply_crm_change(conn, user, _fields(record), changed_at, "reconcile")
                counts["changed"] += bool(applied.merged and applied.merged.changed)
                if applied.job_id is not None:
                    jobs.append(applied.job_id)
            if records and changed_at is not None:
                await checkpoints.put(conn, CHECKPOINT, changed_at, now_iso())
        for job_id in jobs:
            engine.pool.submit(job_id)
        if not cursor or not records:
            break
    logger.info("reconcile_sweep_done", extra=counts)
    return counts


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
