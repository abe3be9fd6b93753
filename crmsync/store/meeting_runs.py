"""A meeting's sync run: started, moved from stage to stage through the outbox, finished or failed."""

from __future__ import annotations

from typing import Any

from ..db import fetch_one
from ..timeutil import now_iso
from . import jobs
from .jobs import Job
from .meetings import STAGES, Meeting, MeetingStore

STAGE_JOBS = ("meeting_contacts", "meeting_push", "meeting_associations")


async def start(store: MeetingStore, meeting_id: str) -> tuple[Meeting, int | None]:
    """Start stage 1 unless a run is going on; return the meeting and the job to run (None if running)."""
    now = now_iso()
    async with store.db.transaction() as conn:
        row = await fetch_one(conn, "SELECT in_progress_sync_status FROM meetings WHERE id = ?", (meeting_id,))
        if row is None or row[0] is not None:
            job_id = None
        else:
            resets = ", ".join(f"{stage}_{edge}_at = NULL" for stage in STAGES[1:] for edge in ("started", "finished"))
            await conn.execute(
                f"UPDATE meetings SET in_progress_sync_status = 1, contacts_started_at = ?,"  # noqa: S608
                f" contacts_finished_at = NULL, {resets} WHERE id = ?",
                (now, meeting_id),
            )
            job_id = await jobs.upsert(conn, STAGE_JOBS[0], meeting_id, now)
    store.cache.invalidate(meeting_id)
    meeting = await store.get(meeting_id)
    assert meeting is not None
    return meeting, job_id


async def advance(store: MeetingStore, job: Job, number: int, extra: dict[str, Any]) -> int | None:
    """Finish stage `number` (1-3) and queue the next one in the same transaction; return its job id."""
    now, stage = now_iso(), STAGES[number - 1]
    sets = [f"{stage}_finished_at = :now", *(f"{column} = :{column}" for column in extra)]
    next_job = None
    async with store.db.transaction() as conn:
        if not await jobs.finish(conn, job, now):
            return None  # a new run re-armed this stage meanwhile; it will run again
        if number < len(STAGES):
            sets += [f"in_progress_sync_status = {number + 1}", f"{STAGES[number]}_started_at = :now"]
            next_job = await jobs.upsert(conn, STAGE_JOBS[number], job.entity_id, now)
        else:
            sets += ["in_progress_sync_status = NULL", "last_sync_success = 1", "last_sync_at = :now",
                     "last_sync_error = NULL"]  # fmt: skip
        await conn.execute(
            f"UPDATE meetings SET {', '.join(sets)} WHERE id = :id",  # noqa: S608 (fixed names)
            {**extra, "now": now, "id": job.entity_id},
        )
    store.cache.invalidate(job.entity_id)
    return next_job


async def fail(store: MeetingStore, job: Job, message: str, run_after: str | None) -> bool:
    """Record a failed stage: retried at run_after, or the run ends failed when run_after is None."""
    now = now_iso()
    async with store.db.transaction() as conn:
        current = await jobs.fail(conn, job, message, run_after, now)
        if current:
            ended = "" if run_after else ", in_progress_sync_status = NULL, last_sync_at = :now"
            await conn.execute(
                f"UPDATE meetings SET last_sync_success = 0, last_sync_error = :error{ended} WHERE id = :id",  # noqa: S608
                {"error": message, "now": now, "id": job.entity_id},
            )
    store.cache.invalidate(job.entity_id)
    return current


async def abandon(store: MeetingStore, job: Job) -> None:
    """Close a stage job whose run is no longer at that stage (or whose meeting is gone)."""
    async with store.db.transaction() as conn:
        await jobs.finish(conn, job, now_iso())
