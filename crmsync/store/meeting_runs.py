"""A meeting's sync run: started, moved from stage to stage through the outbox, finished or failed."""

from __future__ import annotations

from typing import Any

from ..timeutil import now_iso
from . import jobs
from .database import Connection
from .jobs import Job
from .meetings import STAGE_JOBS, Meeting, MeetingStore

__all__ = ["STAGE_JOBS", "abandon", "advance", "fail", "start"]

# Starting is a conditional update, so two requests (or replicas) at once start one run, not two.
_START = (
    "UPDATE meetings SET in_progress_sync_status = 1, contacts_started_at = $1, contacts_finished_at = NULL,"
    " meeting_started_at = NULL, meeting_finished_at = NULL, associations_started_at = NULL,"
    " associations_finished_at = NULL WHERE id = $2 AND in_progress_sync_status IS NULL RETURNING id"
)
# Finishing stage n ($1 now, $2 meeting id, $3 the CRM meeting id stage 2 created, if any).
_FINISH = {
    1: "UPDATE meetings SET contacts_finished_at = $1, in_progress_sync_status = 2, meeting_started_at = $1"
    " WHERE id = $2 AND in_progress_sync_status = 1",
    2: "UPDATE meetings SET meeting_finished_at = $1, in_progress_sync_status = 3, associations_started_at = $1,"
    " crm_meeting_id = COALESCE($3, crm_meeting_id) WHERE id = $2 AND in_progress_sync_status = 2",
    3: "UPDATE meetings SET associations_finished_at = $1, in_progress_sync_status = NULL, last_sync_success = TRUE,"
    " last_sync_at = $1, last_sync_error = NULL WHERE id = $2 AND in_progress_sync_status = 3",
}


async def start(store: MeetingStore, meeting_id: str) -> tuple[Meeting, int | None]:
    """Start stage 1 unless a run is going on; return the meeting and the job to run (None if running)."""
    now = now_iso()
    async with store.db.transaction() as conn:
        started = await conn.fetchrow(_START, now, meeting_id)
        job_id = await jobs.upsert(conn, STAGE_JOBS[0], meeting_id, now) if started else None
        await store.changed(conn, meeting_id)
    store.cache.invalidate(meeting_id)
    meeting = await store.get(meeting_id)
    assert meeting is not None
    return meeting, job_id


async def advance(store: MeetingStore, job: Job, number: int, extra: dict[str, Any]) -> int | None:
    """Finish stage `number` (1-3) and queue the next one in the same transaction; return its job id."""
    now = now_iso()
    next_job = None
    async with store.db.transaction() as conn:
        await _lock(conn, job.entity_id)
        await jobs.check_lease(conn, job)  # raises LeaseLost: another run owns the stage now
        if not await jobs.finish(conn, job, now):
            return None  # a new run re-armed this stage meanwhile; it will run again
        args = (now, job.entity_id, extra.get("crm_meeting_id")) if number == 2 else (now, job.entity_id)
        await conn.execute(_FINISH[number], *args)
        if number < len(STAGE_JOBS):
            next_job = await jobs.upsert(conn, STAGE_JOBS[number], job.entity_id, now)
        await store.changed(conn, job.entity_id)
    store.cache.invalidate(job.entity_id)
    return next_job


async def fail(store: MeetingStore, job: Job, message: str, run_after: str | None) -> bool:
    """Record a failed stage: retried at run_after, or the run ends failed when run_after is None."""
    now = now_iso()
    async with store.db.transaction() as conn:
        await _lock(conn, job.entity_id)
        await jobs.check_lease(conn, job)
        current = await jobs.fail(conn, job, message, run_after, now)
        if current and run_after:
            await conn.execute(
                "UPDATE meetings SET last_sync_success = FALSE, last_sync_error = $1 WHERE id = $2",
                message, job.entity_id,
            )  # fmt: skip
        elif current:
            await conn.execute(
                "UPDATE meetings SET last_sync_success = FALSE, last_sync_error = $1, in_progress_sync_status = NULL,"
                " last_sync_at = $2 WHERE id = $3",
                message, now, job.entity_id,
            )  # fmt: skip
        await store.changed(conn, job.entity_id)
    store.cache.invalidate(job.entity_id)
    return current


async def _lock(conn: Connection, meeting_id: str) -> None:
    """Lock the meeting's row before its job's (the order every transaction keeps)."""
    await conn.fetchrow("SELECT id FROM meetings WHERE id = $1 FOR UPDATE", meeting_id)


async def abandon(store: MeetingStore, job: Job) -> None:
    """Close a stage job whose run is no longer at that stage (or whose meeting is gone)."""
    async with store.db.transaction() as conn:
        await jobs.finish(conn, job, now_iso())
