"""The outbox: one job row per (kind, entity), re-armed by every change that needs a push."""

from __future__ import annotations

import sqlite3

import aiosqlite
import attrs

from ..db import Database, fetch_all, fetch_one

USER_PUSH = "user_push"
USER_RECONCILE = "user_reconcile"
MAX_CRASHES = 3


@attrs.frozen
class Job:
    """A unit of sync work as stored in sync_jobs."""

    id: int
    kind: str
    entity_id: str
    state: str
    generation: int
    attempts: int
    run_after: str | None
    crashes: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """Build from a sync_jobs row."""
        return cls(**{f.name: row[f.name] for f in attrs.fields(cls)})


async def upsert(conn: aiosqlite.Connection, kind: str, entity_id: str, now: str) -> int:
    """Queue a job for the entity, or re-arm its existing one with a fresh budget; return its id."""
    row = await fetch_one(
        conn,
        "INSERT INTO sync_jobs (kind, entity_id, state, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?)"
        " ON CONFLICT (kind, entity_id) DO UPDATE SET state = 'queued', generation = generation + 1,"
        " attempts = 0, crashes = 0, run_after = NULL, last_error = NULL, waits_for = NULL,"
        " updated_at = excluded.updated_at RETURNING id",
        (kind, entity_id, now, now),
    )
    return int(row[0])


async def get_many(db: Database, job_ids: list[int]) -> list[Job]:
    """Read jobs as last committed, in id order."""
    marks = ",".join("?" * len(job_ids))
    query = f"SELECT * FROM sync_jobs WHERE id IN ({marks}) ORDER BY id"  # noqa: S608 (only placeholders)
    return [Job.from_row(row) for row in await fetch_all(db.reader, query, job_ids)]


async def open_jobs(db: Database) -> list[tuple[int, str | None]]:
    """Every queued job as (id, run_after), for re-queueing at start-up."""
    return [
        (row[0], row[1])
        for row in await fetch_all(db.reader, "SELECT id, run_after FROM sync_jobs WHERE state = 'queued' ORDER BY id")
    ]


async def finish(conn: aiosqlite.Connection, job: Job, now: str) -> bool:
    """Mark done unless a newer change re-armed it meanwhile; True when it is done."""
    cursor = await conn.execute(
        "UPDATE sync_jobs SET state = 'done', last_error = NULL, updated_at = ? WHERE id = ? AND generation = ?",
        (now, job.id, job.generation),
    )
    return cursor.rowcount == 1


async def fail(
    conn: aiosqlite.Connection, job: Job, error: str, run_after: str | None, now: str, waits_for: str | None = None
) -> bool:
    """Record a failed run: re-queued for run_after (sooner if waits_for's push lands), or failed for good."""
    state = "queued" if run_after else "failed"
    cursor = await conn.execute(
        "UPDATE sync_jobs SET state = ?, attempts = attempts + 1, run_after = ?, last_error = ?, updated_at = ?,"
        " waits_for = ? WHERE id = ? AND generation = ?",
        (state, run_after, error, now, waits_for, job.id, job.generation),
    )
    return cursor.rowcount == 1


async def wake_waiting(conn: aiosqlite.Connection, user_id: str, now: str) -> list[int]:
    """Make due now the jobs that waited for this user's push; return their ids."""
    rows = await fetch_all(
        conn,
        "UPDATE sync_jobs SET run_after = NULL, waits_for = NULL, updated_at = ? WHERE waits_for = ?"
        " AND state = 'queued' RETURNING id",
        (now, user_id),
    )
    return [row[0] for row in rows]


async def record_crash(conn: aiosqlite.Connection, job: Job, error: str, run_after: str, now: str) -> Job | None:
    """Count a crash of the job's handler: re-queued for run_after, or failed at MAX_CRASHES. None if re-armed."""
    row = await fetch_one(
        conn,
        "UPDATE sync_jobs SET crashes = crashes + 1, last_error = ?, updated_at = ?,"
        " state = CASE WHEN crashes + 1 >= ? THEN 'failed' ELSE 'queued' END,"
        " run_after = CASE WHEN crashes + 1 >= ? THEN NULL ELSE ? END"
        " WHERE id = ? AND generation = ? AND state = 'queued' RETURNING *",
        (error, now, MAX_CRASHES, MAX_CRASHES, run_after, job.id, job.generation),
    )
    return Job.from_row(row) if row else None
