"""Queries on the users table; every write that needs a push also upserts its outbox job."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NoReturn

import aiosqlite
import attrs

from ..db import Database, fetch_all, fetch_one
from ..errors import DuplicateEmail
from ..timeutil import now_iso
from . import jobs

CONTACT_FIELDS = ("name", "email", "phone")
PUBLIC_FIELDS = (
    "id", "name", "email", "phone", "sync_status", "crm_id", "last_error", "sync_attempts",
    "next_retry_at", "created_at", "updated_at", "last_synced_at",
)  # fmt: skip


@attrs.frozen
class User:
    """A contact row, with the sync bookkeeping the API does not show."""

    id: str
    name: str
    email: str
    phone: str
    sync_status: str
    crm_id: str | None
    last_error: str | None
    sync_attempts: int
    next_retry_at: str | None
    created_at: str
    updated_at: str
    last_synced_at: str | None
    create_body: str | None
    create_gen: int
    synced_name: str | None
    synced_email: str | None
    synced_phone: str | None
    crm_updated_at: str | None
    crm_name_at: str | None
    crm_email_at: str | None
    crm_phone_at: str | None
    push_intents: str | None = None
    crm_news_at: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> User:
        """Build from a users row (ignores columns the class does not know)."""
        return cls(**{f.name: row[f.name] for f in attrs.fields(cls)})

    def public(self) -> dict[str, Any]:
        """The JSON the API returns."""
        return {name: getattr(self, name) for name in PUBLIC_FIELDS}

    def contact(self) -> dict[str, str]:
        """The current local name, email and phone."""
        return {"name": self.name, "email": self.email, "phone": self.phone}

    def crm_field_times(self) -> dict[str, str | None]:
        """When the CRM last changed each field, as far as we have seen."""
        return {"name": self.crm_name_at, "email": self.crm_email_at, "phone": self.crm_phone_at}

    def intents(self) -> dict[str, list[str]]:
        """Values sent to the CRM whose outcome we never learned, per field."""
        return json.loads(self.push_intents) if self.push_intents else {}

    def snapshot(self) -> dict[str, str] | None:
        """The values last known to be in the CRM, or None before the first sync."""
        if self.synced_email is None:
            return None
        return {"name": self.synced_name or "", "email": self.synced_email, "phone": self.synced_phone or ""}


MAX_INTENTS = 5  # per field; older unconfirmed values are long superseded


async def record_push_intent(db: Database, user_id: str, fields: dict[str, str]) -> None:
    """Note, durably and before sending, the values a push is about to write to the CRM."""
    async with db.transaction() as conn:
        row = await fetch_one(conn, "SELECT push_intents FROM users WHERE id = ?", (user_id,))
        if row is None:
            return
        intents: dict[str, list[str]] = json.loads(row[0]) if row[0] else {}
        for field, value in fields.items():
            values = [v for v in intents.get(field, []) if v != value]
            intents[field] = [*values, value][-MAX_INTENTS:]
        await conn.execute("UPDATE users SET push_intents = ? WHERE id = ?", (json.dumps(intents), user_id))


async def by_crm_id(db: Database, crm_id: str) -> User | None:
    """The local user linked to a CRM record, as last committed."""
    row = await fetch_one(db.reader, "SELECT * FROM users WHERE crm_id = ?", (crm_id,))
    return User.from_row(row) if row else None


async def by_crm_email(db: Database, email: str) -> User | None:
    """The local user whose CRM record holds this email, as far as we last knew."""
    row = await fetch_one(db.reader, "SELECT * FROM users WHERE synced_email = ?", (email,))
    return User.from_row(row) if row else None


async def _raise_duplicate(conn: aiosqlite.Connection, email: str) -> NoReturn:
    row = await fetch_one(conn, "SELECT id FROM users WHERE email = ?", (email,))
    raise DuplicateEmail("Another user already has this email.", id=row["id"] if row else None)


async def update(db: Database, user_id: str, fields: dict[str, str]) -> tuple[User, int | None] | None:
    """Apply a local edit; when it changes anything, mark pending and queue a push. None if unknown."""
    now = now_iso()
    async with db.transaction() as conn:
        current = await _get(conn, user_id)
        if current is None:
            return None
        changes = {k: v for k, v in fields.items() if getattr(current, k) != v}
        if not changes:
            return current, None
        assignments = ", ".join(f"{k} = :{k}" for k in changes)
        # A user that never reached the CRM gets its create body frozen again if a rejection burned it.
        body = json.dumps({**current.contact(), **changes})
        try:
            row = await fetch_one(
                conn,
                f"UPDATE users SET {assignments}, sync_status = 'pending', next_retry_at = NULL,"  # noqa: S608
                " create_body = CASE WHEN crm_id IS NULL THEN COALESCE(create_body, :body) END,"
                " updated_at = :now WHERE id = :id RETURNING *",
                {**changes, "now": now, "id": user_id, "body": body},
            )
        except sqlite3.IntegrityError:
            await _raise_duplicate(conn, changes["email"])
        job_id = await jobs.upsert(conn, jobs.USER_PUSH, user_id, now)
    return User.from_row(row), job_id


# A re-queued user that never reached the CRM gets a create body again if a rejection burned its last one.
_REQUEUE = (
    "UPDATE users SET sync_status = CASE WHEN sync_status = 'failed' THEN 'pending' ELSE sync_status END,"
    " next_retry_at = NULL, create_body = CASE WHEN crm_id IS NULL THEN"
    " COALESCE(create_body, json_object('name', name, 'email', email, 'phone', phone)) END"
)


async def requeue(db: Database, user_id: str) -> tuple[User, int] | None:
    """Queue a push now, whatever the state: the manual retry."""
    now = now_iso()
    async with db.transaction() as conn:
        row = await fetch_one(conn, _REQUEUE + " WHERE id = ? RETURNING *", (user_id,))
        if row is None:
            return None
        job_id = await jobs.upsert(conn, jobs.USER_PUSH, user_id, now)
    return User.from_row(row), job_id


async def requeue_failed(db: Database) -> list[int]:
    """Queue a push for every failed user, as requeue() does for one; return the job ids."""
    now = now_iso()
    async with db.transaction() as conn:
        user_ids = [row[0] for row in await fetch_all(conn, _REQUEUE + " WHERE sync_status = 'failed' RETURNING id")]
        return [await jobs.upsert(conn, jobs.USER_PUSH, user_id, now) for user_id in user_ids]


async def _get(conn: aiosqlite.Connection, user_id: str) -> User | None:
    row = await fetch_one(conn, "SELECT * FROM users WHERE id = ?", (user_id,))
    return User.from_row(row) if row else None


async def get(db: Database, user_id: str) -> User | None:
    """Read a user as last committed."""
    return await _get(db.reader, user_id)


async def get_many(db: Database, user_ids: list[str]) -> dict[str, User]:
    """Read users as last committed, by id."""
    query = f"SELECT * FROM users WHERE id IN ({','.join('?' * len(user_ids))})"  # noqa: S608 (only placeholders)
    return {row["id"]: User.from_row(row) for row in await fetch_all(db.reader, query, user_ids)}


async def list_page(db: Database, status: str | None, limit: int, after: int) -> tuple[list[User], int | None]:
    """A page of users in creation order after the seq cursor; returns the next cursor or None."""
    where, params = "seq > ?", [after]
    if status is not None:
        where += " AND sync_status = ?"
        params.append(status)
    query = f"SELECT * FROM users WHERE {where} ORDER BY seq LIMIT ?"  # noqa: S608 (only placeholders)
    rows = await fetch_all(db.reader, query, (*params, limit + 1))
    next_cursor = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [User.from_row(r) for r in rows[:limit]], next_cursor
