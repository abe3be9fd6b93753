"""Pull the CRM's state and merge it in: one record on demand, or a sweep of everything changed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..crm.errors import CrmNotFound
from ..errors import Conflict, NotFound
from ..events import user_event
from ..store import checkpoints, users
from ..store.crm_changes import Applied, apply_crm_record, record_change
from ..timeutil import now_iso
from .engine import SyncEngine
from .lifecycle import crm_lost
from .record_pages import apply_page
from .settle import settled

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
        record = await engine.crm.get_contact(user.crm_id)
    except CrmNotFound:
        await crm_lost(engine, user.id, user.crm_id, "reconcile")
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


async def sweep(engine: SyncEngine, on_page: Callable[[], Awaitable[None]] | None = None) -> dict[str, int]:
    """Merge every CRM record changed since the stored checkpoint, a page per transaction.

    on_page runs before each page (the sweeper extends its lease there).
    """
    since = await checkpoints.get(engine.db, CHECKPOINT)
    cursor: str | None = None
    counts = {"seen": 0, "changed": 0, "unknown": 0, "rejected": 0, "linked": 0, "imported": 0}
    while True:
        if on_page is not None:
            await on_page()
        read_since = now_iso()
        page = await engine.crm.list_contacts(since, cursor)
        cursor = page.next_cursor
        counts["seen"] += page.seen
        jobs = await apply_page(engine, page, read_since, counts, CHECKPOINT, engine.config.import_crm_creates)
        if jobs:
            engine.wake()
        if not cursor or not page.seen:
            break
    logger.info("reconcile_sweep_done", extra=counts)
    return counts
