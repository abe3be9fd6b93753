"""The outbox: one job row per (kind, entity), re-armed by every change that needs a push."""

from __future__ import annotations

import sqlite3

import aiosqlite
import attrs

from ..db import Database, fetch_all, fetch_one

USER_PUSH = "user_push"


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
        " attempts = 0, run_after = NULL, last_error = NULL, updated_at = excluded.updated_at RETURNING id",
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


async def fail(conn: aiosqlite.Connection, job: Job, error: str, run_after: str | None, now: str) -> bool:
    """Record a failed run: re-queued for run_after, or failed for good when run_after is None."""
    state = "queued" if run_after else "failed"
    cursor = await conn.execute(
        "UPDATE sync_jobs SET state = ?, attempts = attempts + 1, run_after = ?, last_error = ?, updated_at = ?"
        " WHERE id = ? AND generation = ?",
        (state, run_after, error, now, job.id, job.generation),
    )
    return cursor.rowcount == 1
