"""Group commit for new users: creates that arrive together share one transaction and one fsync."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import attrs

from ..db import Database, fetch_all
from ..errors import DuplicateEmail, StorageUnavailable
from ..timeutil import now_iso
from .jobs import USER_PUSH
from .users import User

logger = logging.getLogger(__name__)

Created = tuple[User, int]


@attrs.define
class _Request:
    fields: dict[str, str]
    done: asyncio.Future[Created]


class GroupCreator:
    """Inserts users with their outbox jobs; a create returns only once its batch is committed."""

    def __init__(self, db: Database, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._waiting: list[_Request] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="user-creator")

    async def stop(self) -> None:
        """Write what is waiting, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def create(self, fields: dict[str, str]) -> Created:
        """Insert a pending user and its sync job; durable when this returns. Raises DuplicateEmail."""
        request = _Request(fields, asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        self._wakeup.set()
        # Shielded: a client that hangs up does not cancel a write its neighbours share.
        return await asyncio.shield(request.done)

    async def _run(self) -> None:
        while not self._closing or self._waiting:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                await self._write_next()

    async def _write_next(self) -> None:
        batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        try:
            results = await _insert(self._db, [r.fields for r in batch])
        except Exception as exc:  # every waiter learns of the failure; nothing was committed
            if not isinstance(exc, StorageUnavailable):  # that one is logged once per episode by the database
                logger.exception("user_create_failed", extra={"batch": len(batch)})
            results = [exc] * len(batch)
        for request, result in zip(batch, results, strict=True):
            if request.done.done():
                continue
            if isinstance(result, BaseException):
                request.done.set_exception(result)
            else:
                request.done.set_result(result)


async def _insert(db: Database, batch: list[dict[str, str]]) -> list[Created | Exception]:
    """One transaction for the whole batch; an email taken (before or earlier in it) fails that item only."""
    now = now_iso()
    emails = [fields["email"] for fields in batch]
    marks = ",".join("?" * len(emails))
    results: list[Created | Exception] = []
    rows = []
    async with db.transaction() as conn:
        query = f"SELECT email, id FROM users WHERE email IN ({marks})"  # noqa: S608 (only placeholders)
        owners = {row[0]: row[1] for row in await fetch_all(conn, query, emails)}
        users: list[User | None] = []
        for fields in batch:
            if fields["email"] in owners:
                users.append(None)
                continue
            user = _new_user(fields, now)
            owners[user.email] = user.id
            users.append(user)
            rows.append((user.id, user.name, user.email, user.phone, now, now, user.create_body))
        await conn.executemany(
            "INSERT INTO users (id, name, email, phone, sync_status, created_at, updated_at, create_body)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            rows,
        )
        await conn.executemany(
            "INSERT INTO sync_jobs (kind, entity_id, state, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?)",
            [(USER_PUSH, row[0], now, now) for row in rows],
        )
        ids = [row[0] for row in rows]
        query = f"SELECT entity_id, id FROM sync_jobs WHERE kind = ? AND entity_id IN ({','.join('?' * len(ids))})"  # noqa: S608
        job_ids = {row[0]: row[1] for row in await fetch_all(conn, query, (USER_PUSH, *ids))} if ids else {}
    for fields, user in zip(batch, users, strict=True):
        if user is None:
            results.append(DuplicateEmail("Another user already has this email.", id=owners[fields["email"]]))
        else:
            results.append((user, job_ids[user.id]))
    return results


def _new_user(fields: dict[str, str], now: str) -> User:
    return User(
        id=str(uuid.uuid4()), name=fields["name"], email=fields["email"], phone=fields["phone"],
        sync_status="pending", crm_id=None, last_error=None, sync_attempts=0, next_retry_at=None,
        created_at=now, updated_at=now, last_synced_at=None, create_body=json.dumps(fields), create_gen=0,
        synced_name=None, synced_email=None, synced_phone=None, crm_updated_at=None,
        crm_name_at=None, crm_email_at=None, crm_phone_at=None,
    )  # fmt: skip
