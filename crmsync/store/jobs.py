"""The outbox: one job row per (kind, entity), re-armed by every change that needs a push.

A replica claims due jobs under a lease (lease_owner, lease_until, lease_token); the lease token moves
on every claim, so an outcome from a replica that lost its lease meanwhile is recognised and dropped.
"""

from __future__ import annotations

import attrs

from .database import Connection, Database, Row
from .dialect import marks
from .errors import StoreError

USER_PUSH = "user_push"
USER_RECONCILE = "user_reconcile"
USER_DELETE = "user_delete"
MAX_CRASHES = 3
CHANNEL = "crmsync_jobs"  # notified when a job becomes due now


class LeaseLost(StoreError):
    """This replica's lease on the job ended (it paused too long) and another may have run it since."""


@attrs.frozen
class Job:
    """A unit of sync work as stored in sync_jobs, as claimed."""

    id: int
    kind: str
    entity_id: str
    state: str
    generation: int
    attempts: int
    run_after: str | None
    crashes: int = 0
    lease_token: int = 0

    @classmethod
    def from_row(cls, row: Row) -> Job:
        """Build from a sync_jobs row."""
        return cls(**{name: row[name] for name in _FIELD_NAMES})


_FIELD_NAMES = tuple(field.name for field in attrs.fields(Job))


async def upsert(conn: Connection, kind: str, entity_id: str, now: str) -> int:
    """Queue a job for the entity due now, or re-arm its existing one with a fresh budget; return its id.

    A job running under a lease keeps it: the re-armed job runs once that run ends, never beside it.
    """
    job_id = await conn.fetchval(
        "INSERT INTO sync_jobs (kind, entity_id, state, run_after, created_at, updated_at)"
        " VALUES ($1, $2, 'queued', $3, $3, $3)"
        " ON CONFLICT (kind, entity_id) DO UPDATE SET state = 'queued', generation = sync_jobs.generation + 1,"
        " attempts = 0, crashes = 0, run_after = excluded.run_after, last_error = NULL, waits_for = NULL,"
        " updated_at = excluded.updated_at RETURNING id",
        kind, entity_id, now,
    )  # fmt: skip
    await conn.notify(CHANNEL)
    return int(job_id)


async def insert_many(conn: Connection, kind: str, entity_ids: list[str], now: str) -> dict[str, int]:
    """Queue a job due now for each of these new entities; return the job id of each."""
    await conn.executemany(
        "INSERT INTO sync_jobs (kind, entity_id, state, run_after, created_at, updated_at)"
        " VALUES ($1, $2, 'queued', $3, $3, $3)",
        [(kind, entity_id, now) for entity_id in entity_ids],
    )
    await conn.notify(CHANNEL)
    sql = f"SELECT entity_id, id FROM sync_jobs WHERE kind = $1 AND entity_id IN ({marks(len(entity_ids), 2)})"  # noqa: S608
    return {row[0]: int(row[1]) for row in await conn.fetch(sql, kind, *entity_ids)}


async def claim(db: Database, owner: str, limit: int, now: str, lease_until: str) -> list[Job]:
    """Claim up to `limit` due jobs for this replica, oldest due first, under a lease until lease_until.

    A job leased by a replica that died is due again once its lease runs out: the same claim takes it.
    """
    async with db.transaction(durable=False) as conn:
        rows = await conn.fetch(
            "UPDATE sync_jobs SET lease_owner = $1, lease_until = $2, lease_token = lease_token + 1"
            " WHERE id IN (SELECT id FROM sync_jobs WHERE state = 'queued' AND run_after <= $3"
            " AND (lease_until IS NULL OR lease_until < $3) ORDER BY run_after LIMIT $4 FOR UPDATE SKIP LOCKED)"
            " RETURNING *",
            owner, lease_until, now, limit,
        )  # fmt: skip
    return sorted((Job.from_row(row) for row in rows), key=lambda job: (job.run_after or "", job.id))


async def next_due(db: Database) -> str | None:
    """When the earliest queued job falls due (leased ones included), or None when none is queued."""
    return await db.fetchval("SELECT MIN(run_after) FROM sync_jobs WHERE state = 'queued'")


async def check_lease(conn: Connection, job: Job) -> None:
    """Lock the job's row and raise LeaseLost unless this claim's lease still holds it."""
    token = await conn.fetchval("SELECT lease_token FROM sync_jobs WHERE id = $1 FOR UPDATE", job.id)
    if token != job.lease_token:
        raise LeaseLost(f"job {job.id} was claimed again since")


async def lock_many(conn: Connection, job_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Lock these jobs' rows in id order; (lease token, generation) by id."""
    where = f"id IN ({marks(len(job_ids))})"
    sql = f"SELECT id, lease_token, generation FROM sync_jobs WHERE {where} ORDER BY id FOR UPDATE"  # noqa: S608
    return {int(row[0]): (int(row[1]), int(row[2])) for row in await conn.fetch(sql, *job_ids)}


async def extend(db: Database, owner: str, job_ids: list[int], lease_until: str) -> int:
    """Extend this replica's leases on these jobs; return how many it still holds."""
    if not job_ids:
        return 0
    async with db.transaction(durable=False) as conn:
        return await conn.execute(
            f"UPDATE sync_jobs SET lease_until = $1 WHERE lease_owner = $2 AND id IN ({marks(len(job_ids), 3)})",  # noqa: S608
            lease_until, owner, *job_ids,
        )  # fmt: skip


async def release_owned(db: Database, owner: str | None) -> int:
    """Give up the leases of a replica (all leases when owner is None): their jobs are claimable now."""
    async with db.transaction(durable=False) as conn:
        if owner is None:
            released = await conn.execute(
                "UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
            )
        else:
            released = await conn.execute(
                "UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1", owner
            )
        if released:
            await conn.notify(CHANNEL)
    return released


async def in_flight(conn: Connection, user_id: str, now: str) -> bool:
    """True while a replica holds a live lease on the user's push (its answer has not landed yet)."""
    leased = await conn.fetchval(
        "SELECT lease_until FROM sync_jobs WHERE kind = $1 AND entity_id = $2 AND state = 'queued'"
        " AND lease_until > $3",
        USER_PUSH, user_id, now,
    )  # fmt: skip
    return leased is not None


async def get_many(db: Database, job_ids: list[int]) -> list[Job]:
    """Read jobs as last committed, in id order."""
    sql = f"SELECT * FROM sync_jobs WHERE id IN ({marks(len(job_ids))}) ORDER BY id"  # noqa: S608 (placeholders)
    return [Job.from_row(row) for row in await db.fetch(sql, *job_ids)]


async def queued_count(db: Database) -> int:
    """How many jobs wait to run."""
    return int(await db.fetchval("SELECT COUNT(*) FROM sync_jobs WHERE state = 'queued'"))


async def finish(conn: Connection, job: Job, now: str) -> bool:
    """Mark done and release the lease, unless a newer change re-armed it meanwhile; True when done."""
    changed = await conn.execute(
        "UPDATE sync_jobs SET state = 'done', last_error = NULL, updated_at = $1, lease_owner = NULL,"
        " lease_until = NULL WHERE id = $2 AND generation = $3",
        now, job.id, job.generation,
    )  # fmt: skip
    if not changed:
        await _release(conn, job)
    return changed == 1


async def finish_many(conn: Connection, done: list[Job], rearmed: list[Job], now: str) -> None:
    """Mark jobs done whose generation the caller found unchanged under lock (lock_many); release the
    leases of those a newer change re-armed meanwhile: they run again at once."""
    if done:
        await conn.execute(
            "UPDATE sync_jobs SET state = 'done', last_error = NULL, updated_at = $1, lease_owner = NULL,"  # noqa: S608
            f" lease_until = NULL WHERE id IN ({marks(len(done), 2)})",
            now, *(job.id for job in done),
        )  # fmt: skip
    if rearmed:
        await conn.execute(
            f"UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL WHERE id IN ({marks(len(rearmed))})",  # noqa: S608
            *(job.id for job in rearmed),
        )  # fmt: skip
        await conn.notify(CHANNEL)


async def fail(
    conn: Connection, job: Job, error: str, run_after: str | None, now: str, waits_for: str | None = None
) -> bool:
    """Record a failed run: re-queued for run_after (sooner if waits_for's push lands), or failed for good."""
    changed = await conn.execute(
        "UPDATE sync_jobs SET state = $1, attempts = attempts + 1, run_after = $2, last_error = $3, updated_at = $4,"
        " waits_for = $5, lease_owner = NULL, lease_until = NULL WHERE id = $6 AND generation = $7",
        "queued" if run_after else "failed", run_after, error, now, waits_for, job.id, job.generation,
    )  # fmt: skip
    if not changed:
        await _release(conn, job)
    return changed == 1


async def wait_for_push(conn: Connection, job: Job, user_id: str, run_after: str, now: str) -> None:
    """Give up this claim without using an attempt: the job runs when the user's push in flight lands
    (its outcome wakes it), or at run_after should that push's replica die."""
    await conn.execute(
        "UPDATE sync_jobs SET waits_for = $1, run_after = $2, updated_at = $3, lease_owner = NULL, lease_until = NULL"
        " WHERE id = $4 AND lease_token = $5 AND state = 'queued'",
        user_id, run_after, now, job.id, job.lease_token,
    )  # fmt: skip


async def postpone(db: Database, job: Job, run_after: str) -> None:
    """Give up this claim's lease and run the job again at run_after (its run was interrupted)."""
    async with db.transaction(durable=False) as conn:
        await conn.execute(
            "UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL, run_after = $1"
            " WHERE id = $2 AND lease_token = $3 AND state = 'queued'",
            run_after, job.id, job.lease_token,
        )  # fmt: skip


async def _release(conn: Connection, job: Job) -> None:
    """Give up this claim's lease on a job a newer change re-armed: it runs again at once."""
    await conn.execute(
        "UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2",
        job.id, job.lease_token,
    )  # fmt: skip
    await conn.notify(CHANNEL)


async def cancel(conn: Connection, kind: str, entity_id: str, now: str) -> None:
    """Drop the entity's queued job of this kind, unless a run holds it now (that run ends by itself)."""
    await conn.execute(
        "UPDATE sync_jobs SET state = 'done', updated_at = $1 WHERE kind = $2 AND entity_id = $3 AND state = 'queued'"
        " AND (lease_until IS NULL OR lease_until < $1)",
        now, kind, entity_id,
    )  # fmt: skip


async def fail_all_for(conn: Connection, entity_id: str, error: str, now: str) -> None:
    """Fail every open job of an entity for good (its record is gone); a run holding one ends by itself."""
    await conn.execute(
        "UPDATE sync_jobs SET state = 'failed', last_error = $1, updated_at = $2, lease_owner = NULL,"
        " lease_until = NULL WHERE entity_id = $3 AND state = 'queued'",
        error, now, entity_id,
    )  # fmt: skip


async def wake_waiting(conn: Connection, user_id: str, now: str) -> list[int]:
    """Make due now the jobs that waited for this user's push; return their ids."""
    rows = await conn.fetch(
        "UPDATE sync_jobs SET run_after = $1, waits_for = NULL, updated_at = $1 WHERE waits_for = $2"
        " AND state = 'queued' RETURNING id",
        now, user_id,
    )  # fmt: skip
    if rows:
        await conn.notify(CHANNEL)
    return [int(row[0]) for row in rows]


async def wake_waiting_many(conn: Connection, user_ids: list[str], now: str) -> list[int]:
    """wake_waiting for several users' pushes at once."""
    rows = await conn.fetch(
        "UPDATE sync_jobs SET run_after = $1, waits_for = NULL, updated_at = $1"  # noqa: S608
        f" WHERE waits_for IN ({marks(len(user_ids), 2)}) AND state = 'queued' RETURNING id",
        now, *user_ids,
    )  # fmt: skip
    if rows:
        await conn.notify(CHANNEL)
    return [int(row[0]) for row in rows]


async def record_crash(db: Database, job: Job, error: str, run_after: str, now: str) -> Job | None:
    """Count a crash of the job's handler: re-queued for run_after, or failed at MAX_CRASHES.

    None when this claim no longer holds the job (re-armed or re-claimed meanwhile).
    """
    crashes = job.crashes + 1
    final = crashes >= MAX_CRASHES
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "UPDATE sync_jobs SET crashes = $1, last_error = $2, updated_at = $3, state = $4, run_after = $5,"
            " lease_owner = NULL, lease_until = NULL"
            " WHERE id = $6 AND generation = $7 AND lease_token = $8 AND state = 'queued' RETURNING *",
            crashes, error, now, "failed" if final else "queued", None if final else run_after, job.id,
            job.generation, job.lease_token,
        )  # fmt: skip
    return Job.from_row(row) if row else None


async def pushing(db: Database, user_ids: list[str], now: str) -> set[str]:
    """Which of these users have a push on the wire right now (a live lease, on any replica)."""
    if not user_ids:
        return set()
    where = f"kind = $1 AND state = 'queued' AND lease_until > $2 AND entity_id IN ({marks(len(user_ids), 3)})"
    sql = f"SELECT entity_id FROM sync_jobs WHERE {where}"  # noqa: S608 (placeholders only)
    return {row[0] for row in await db.fetch(sql, USER_PUSH, now, *user_ids)}


async def claim_one(db: Database, job_id: int, owner: str, now: str, lease_until: str) -> Job | None:
    """Claim one queued job now, unless another run holds it; None when it is not ours to run."""
    async with db.transaction(durable=False) as conn:
        row = await conn.fetchrow(
            "UPDATE sync_jobs SET lease_owner = $1, lease_until = $2, lease_token = lease_token + 1"
            " WHERE id = $3 AND state = 'queued' AND (lease_until IS NULL OR lease_until < $4) RETURNING *",
            owner, lease_until, job_id, now,
        )  # fmt: skip
    return Job.from_row(row) if row else None
