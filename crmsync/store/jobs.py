"""The outbox: one job row per (kind, entity), re-armed by every change that needs a push."""

from __future__ import annotations

import attrs

from .database import Connection, Database, Row
from .dialect import marks

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
    def from_row(cls, row: Row) -> Job:
        """Build from a sync_jobs row."""
        return cls(**{name: row[name] for name in _FIELD_NAMES})


_FIELD_NAMES = tuple(field.name for field in attrs.fields(Job))


async def upsert(conn: Connection, kind: str, entity_id: str, now: str) -> int:
    """Queue a job for the entity, or re-arm its existing one with a fresh budget; return its id."""
    job_id = await conn.fetchval(
        "INSERT INTO sync_jobs (kind, entity_id, state, created_at, updated_at) VALUES ($1, $2, 'queued', $3, $3)"
        " ON CONFLICT (kind, entity_id) DO UPDATE SET state = 'queued', generation = sync_jobs.generation + 1,"
        " attempts = 0, crashes = 0, run_after = NULL, last_error = NULL, waits_for = NULL,"
        " updated_at = excluded.updated_at RETURNING id",
        kind, entity_id, now,
    )  # fmt: skip
    return int(job_id)


async def insert_many(conn: Connection, kind: str, entity_ids: list[str], now: str) -> dict[str, int]:
    """Queue a job for each of these new entities; return the job id of each."""
    await conn.executemany(
        "INSERT INTO sync_jobs (kind, entity_id, state, created_at, updated_at) VALUES ($1, $2, 'queued', $3, $3)",
        [(kind, entity_id, now) for entity_id in entity_ids],
    )
    sql = f"SELECT entity_id, id FROM sync_jobs WHERE kind = $1 AND entity_id IN ({marks(len(entity_ids), 2)})"  # noqa: S608
    return {row[0]: int(row[1]) for row in await conn.fetch(sql, kind, *entity_ids)}


async def get_many(db: Database, job_ids: list[int]) -> list[Job]:
    """Read jobs as last committed, in id order."""
    sql = f"SELECT * FROM sync_jobs WHERE id IN ({marks(len(job_ids))}) ORDER BY id"  # noqa: S608 (placeholders)
    return [Job.from_row(row) for row in await db.fetch(sql, *job_ids)]


async def open_jobs(db: Database) -> list[tuple[int, str | None]]:
    """Every queued job as (id, run_after), for re-queueing at start-up."""
    rows = await db.fetch("SELECT id, run_after FROM sync_jobs WHERE state = 'queued' ORDER BY id")
    return [(int(row[0]), row[1]) for row in rows]


async def finish(conn: Connection, job: Job, now: str) -> bool:
    """Mark done unless a newer change re-armed it meanwhile; True when it is done."""
    changed = await conn.execute(
        "UPDATE sync_jobs SET state = 'done', last_error = NULL, updated_at = $1 WHERE id = $2 AND generation = $3",
        now, job.id, job.generation,
    )  # fmt: skip
    return changed == 1


async def fail(
    conn: Connection, job: Job, error: str, run_after: str | None, now: str, waits_for: str | None = None
) -> bool:
    """Record a failed run: re-queued for run_after (sooner if waits_for's push lands), or failed for good."""
    changed = await conn.execute(
        "UPDATE sync_jobs SET state = $1, attempts = attempts + 1, run_after = $2, last_error = $3, updated_at = $4,"
        " waits_for = $5 WHERE id = $6 AND generation = $7",
        "queued" if run_after else "failed", run_after, error, now, waits_for, job.id, job.generation,
    )  # fmt: skip
    return changed == 1


async def fail_all_for(conn: Connection, entity_id: str, error: str, now: str) -> None:
    """Fail every open job of an entity for good (its record is gone)."""
    await conn.execute(
        "UPDATE sync_jobs SET state = 'failed', last_error = $1, updated_at = $2 WHERE entity_id = $3"
        " AND state = 'queued'",
        error, now, entity_id,
    )  # fmt: skip


async def wake_waiting(conn: Connection, user_id: str, now: str) -> list[int]:
    """Make due now the jobs that waited for this user's push; return their ids."""
    rows = await conn.fetch(
        "UPDATE sync_jobs SET run_after = NULL, waits_for = NULL, updated_at = $1 WHERE waits_for = $2"
        " AND state = 'queued' RETURNING id",
        now, user_id,
    )  # fmt: skip
    return [int(row[0]) for row in rows]


async def record_crash(conn: Connection, job: Job, error: str, run_after: str, now: str) -> Job | None:
    """Count a crash of the job's handler: re-queued for run_after, or failed at MAX_CRASHES. None if re-armed."""
    crashes = job.crashes + 1
    final = crashes >= MAX_CRASHES
    row = await conn.fetchrow(
        "UPDATE sync_jobs SET crashes = $1, last_error = $2, updated_at = $3, state = $4, run_after = $5"
        " WHERE id = $6 AND generation = $7 AND state = 'queued' RETURNING *",
        crashes, error, now, "failed" if final else "queued", None if final else run_after, job.id, job.generation,
    )  # fmt: skip
    return Job.from_row(row) if row else None
