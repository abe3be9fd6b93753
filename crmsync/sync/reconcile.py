"""Pull the CRM's state and merge it in: one record on demand, or a sweep of everything changed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..crm.errors import CrmNotFound
from ..errors import Conflict, DuplicateEmail, NotFound
from ..events import user_event
from ..store import checkpoints, users
from ..store.crm_changes import Applied, CrmChange, apply_crm_record, record_change
from ..store.database import Connection
from ..store.user_sync import mark_deleted_in_crm
from ..timeutil import now_iso
from .engine import SyncEngine
from .settle import settled
from .user_push import DELETED

logger = logging.getLogger(__name__)

CHECKPOINT = "crm_users_updated_since"


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
    await settled(engine.db, [user.id])
    async with engine.db.transaction() as conn:
        applied = await apply_crm_record(conn, user.id, record_change(record, read_since), "reconcile")
    if applied is None:
        raise NotFound("No user with this id.")
    if applied.job_id is not None:
        engine.wake()
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


async def sweep(engine: SyncEngine, on_page: Callable[[], Awaitable[None]] | None = None) -> dict[str, int]:
    """Merge every CRM record changed since the stored checkpoint, a page per transaction.

    on_page runs before each page (the sweeper extends its lease there).
    """
    since = await checkpoints.get(engine.db, CHECKPOINT)
    cursor: str | None = None
    counts = {"seen": 0, "changed": 0, "unknown": 0, "rejected": 0}
    while True:
        if on_page is not None:
            await on_page()
        read_since = now_iso()
        records, cursor = await engine.crm.list_users(since, cursor)
        counts["seen"] += len(records)
        jobs = await _apply_page(engine, records, read_since, counts)
        if jobs:
            engine.wake()
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
    await settled(engine.db, list(linked.values()))  # our own pushes' answers come first
    changes: list[tuple[str, str, CrmChange]] = []  # (user id, crm_id, change), in user id order
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
    changes.sort(key=lambda item: item[0])  # rows locked in one order by every transaction: seldom a deadlock

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
