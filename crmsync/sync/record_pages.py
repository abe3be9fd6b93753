"""One page of CRM records merged into the local store in one transaction (sweep, full reconcile, import)."""

from __future__ import annotations

import logging

from ..crm.types import ContactPage
from ..errors import DuplicateEmail
from ..store import checkpoints, users
from ..store.crm_changes import CrmChange, apply_crm_record, record_change
from ..store.database import Connection
from ..timeutil import now_iso
from .engine import SyncEngine
from .lifecycle import appeared_in_crm
from .settle import settled

logger = logging.getLogger(__name__)


async def apply_page(
    engine: SyncEngine,
    page: ContactPage,
    read_since: str,
    counts: dict[str, int],
    checkpoint_name: str | None,
    import_unknown: bool,
) -> list[int]:
    """Apply one page; a record we cannot apply is skipped, not fatal to the rest. A record nobody here
    is linked to links the unlinked user with its email, or (import_unknown) appears here as a new user.
    Returns the ids of jobs queued (pushes of local changes the CRM still lacks)."""
    linked = await users.ids_by_crm_id(engine.db, [contact.crm_id for contact in page.contacts])
    await settled(engine.db, list(linked.values()))  # our own pushes' answers come first
    changes: list[tuple[str | None, str, CrmChange]] = []  # (user id or None, crm_id, change)
    checkpoint: str | None = None
    skipped = {"rejected": len(page.malformed), "unknown": 0}
    for contact in page.contacts:
        change = record_change(contact, read_since)
        checkpoint = max(checkpoint or "", change.at)
        user_id = linked.get(contact.crm_id)
        if user_id is None and not import_unknown:
            skipped["unknown"] += 1
            continue
        changes.append((user_id, contact.crm_id, change))
    # Rows locked in the order every transaction keeps (unknown records, which lock nobody's row, last).
    changes.sort(key=lambda item: (item[0] is None, users.lock_order(item[1], item[0] or "")))

    async def apply(conn: Connection) -> tuple[list[int], dict[str, int]]:
        jobs: list[int] = []
        tally = {"changed": 0, "rejected": 0, "unknown": 0, "linked": 0, "imported": 0}
        for user_id, crm_id, change in changes:
            try:
                async with conn.savepoint():
                    if user_id is None:
                        result, _ = await appeared_in_crm(conn, crm_id, change, "crm", import_unknown)
                        tally[result if result in tally else "unknown"] += 1
                        continue
                    applied = await apply_crm_record(conn, user_id, change, "reconcile")
            except (DuplicateEmail, ValueError) as exc:
                tally["rejected"] += 1
                logger.warning("reconcile_record_rejected", extra={"crm_id": crm_id, "error": str(exc)})
                continue
            tally["changed"] += bool(applied and applied.merged and applied.merged.changed)
            if applied and applied.job_id is not None:
                jobs.append(applied.job_id)
        if checkpoint and checkpoint_name:
            await checkpoints.put(conn, checkpoint_name, checkpoint, now_iso())
        return jobs, tally

    jobs, tally = await engine.db.run(apply)
    for key, value in [*tally.items(), *skipped.items()]:
        counts[key] = counts.get(key, 0) + value
    return jobs
