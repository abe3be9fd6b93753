"""New users with their outbox jobs: creates that arrive together share one transaction and one fsync."""

from __future__ import annotations

import json
import uuid

from ..errors import DuplicateEmail
from ..timeutil import now_iso
from . import jobs
from .database import Connection, Database
from .dialect import marks
from .errors import UniqueViolation
from .group_commit import GroupCommit
from .users import User

Created = tuple[User, int]


class UserCreator:
    """Inserts users through group commit; a create returns only once its batch is committed."""

    def __init__(self, db: Database) -> None:
        self._group: GroupCommit[dict[str, str], Created] = GroupCommit(
            db.transaction, insert_users, parallel=db.parallel_batches
        )

    async def create(self, fields: dict[str, str]) -> Created:
        """Insert a pending user and its sync job; durable when this returns. Raises DuplicateEmail."""
        return await self._group.run(fields)

    async def close(self) -> None:
        """Write what is waiting."""
        await self._group.close()


async def create_many(db: Database, batch: list[dict[str, str]]) -> list[Created | DuplicateEmail]:
    """Insert these users (distinct emails) and their sync jobs in one transaction, durable when this returns.

    An email another user already has fails alone (DuplicateEmail with that user's id); the rest go in.
    """

    async def insert(conn: Connection) -> list[Created | DuplicateEmail]:
        emails = [fields["email"] for fields in batch]
        sql = f"SELECT email, id FROM users WHERE email IN ({marks(len(emails))})"  # noqa: S608 (placeholders)
        taken = {row[0]: row[1] for row in await conn.fetch(sql, *emails)}
        # In email order, the same for every batch (not the batch's own): two batches that share emails then
        # never wait on each other's rows in a circle (a deadlock, on PostgreSQL). A user committed since the
        # read above still fails alone: insert_users goes one by one then.
        fresh = sorted((f for f in batch if f["email"] not in taken), key=lambda f: f["email"])
        done = dict(zip((f["email"] for f in fresh), await insert_users(conn, fresh) if fresh else [], strict=True))
        return [
            DuplicateEmail("Another user already has this email.", id=taken[f["email"]]) if f["email"] in taken
            else _created_or_duplicate(done[f["email"]])
            for f in batch
        ]  # fmt: skip

    return await db.run(insert)


def _created_or_duplicate(result: Created | Exception) -> Created | DuplicateEmail:
    if isinstance(result, DuplicateEmail) or not isinstance(result, Exception):
        return result
    raise result


async def insert_users(conn: Connection, batch: list[dict[str, str]]) -> list[Created | Exception]:
    """Insert a batch with a few multi-row statements; when an email is taken, go one by one so it fails alone."""
    now = now_iso()
    users = [_new_user(fields, now) for fields in batch]
    try:
        async with conn.savepoint():
            return list(await _insert(conn, users, now))
    except UniqueViolation:
        pass
    results: list[Created | Exception] = []
    for user in users:
        try:
            async with conn.savepoint():
                results += await _insert(conn, [user], now)
        except UniqueViolation as exc:
            if exc.constraint != "users.email":
                raise
            owner = await conn.fetchval("SELECT id FROM users WHERE email = $1", user.email)
            results.append(DuplicateEmail("Another user already has this email.", id=owner))
    return results


async def _insert(conn: Connection, users: list[User], now: str) -> list[Created]:
    await conn.executemany(
        "INSERT INTO users (id, name, email, phone, sync_status, created_at, updated_at, create_body)"
        " VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6)",
        [(u.id, u.name, u.email, u.phone, now, u.create_body) for u in users],
    )
    job_ids = await jobs.insert_many(conn, jobs.USER_PUSH, [u.id for u in users], now)
    return [(user, job_ids[user.id]) for user in users]


def _new_user(fields: dict[str, str], now: str) -> User:
    return User(
        id=str(uuid.uuid4()), name=fields["name"], email=fields["email"], phone=fields["phone"],
        sync_status="pending", crm_id=None, last_error=None, sync_attempts=0, next_retry_at=None,
        created_at=now, updated_at=now, last_synced_at=None, create_body=json.dumps(fields), create_gen=0,
        synced_name=None, synced_email=None, synced_phone=None, crm_updated_at=None,
        crm_name_at=None, crm_email_at=None, crm_phone_at=None,
    )  # fmt: skip
