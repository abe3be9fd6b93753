"""The users table: contacts, read and edited; every write that needs a push also upserts its outbox job."""

from __future__ import annotations

import json
import operator
from typing import Any

import attrs

from ..errors import Conflict, DuplicateEmail
from ..timeutil import now_iso
from . import jobs
from .database import Connection, Database, Row
from .dialect import marks
from .errors import UniqueViolation

CONTACT_FIELDS = ("name", "email", "phone")
PUBLIC_FIELDS = (
    "id", "name", "email", "phone", "sync_status", "crm_id", "last_error", "sync_attempts",
    "next_retry_at", "created_at", "updated_at", "last_synced_at",
)  # fmt: skip
MAX_INTENTS = 5  # per field; older unconfirmed values are long superseded


@attrs.frozen
class User:
    """A contact row, with the sync bookkeeping the API does not show.

    name, email and phone are None only on a tombstone (deleted_at set), which no read but the
    webhook lookup returns.
    """

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
    linked_at: str | None = None
    delete_requested_at: str | None = None
    deleted_at: str | None = None
    crm_deleted_id: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> User:
        """Build from a users row (ignores columns the class does not know)."""
        # By position, with the positions worked out once per column layout: a sqlite3.Row finds a column
        # by name with a scan of all of them, and the drain builds several users per record it syncs.
        columns = tuple(row.keys())
        if (pick := _PICKERS.get(columns)) is None:
            pick = _PICKERS[columns] = operator.itemgetter(*(columns.index(name) for name in _FIELD_NAMES))
        return cls(*pick(row))

    def public(self) -> dict[str, Any]:
        """The JSON the API returns."""
        body = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        if self.crm_deleted_id is not None:
            body["deleted_in_crm"] = {"crm_id": self.crm_deleted_id}  # a person chooses: re-create or delete
        return body

    @property
    def deleting(self) -> bool:
        """True once a person asked to delete it (its CRM delete may still be running, or have failed)."""
        return self.delete_requested_at is not None

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


_FIELD_NAMES = tuple(field.name for field in attrs.fields(User))
_PICKERS: dict[tuple[str, ...], operator.itemgetter[Any]] = {}  # column layout -> the fields' positions in it


def lock_order(crm_id: str | None, user_id: str) -> tuple[str, str]:
    """Where a user's row comes in the one order in which every transaction locks several users' rows.

    By crm_id first, the one thing a webhook knows before it reads anything, so that no two
    transactions ever wait on each other's rows in a circle (a deadlock, on PostgreSQL).
    """
    return (crm_id or "", user_id)


async def lock(conn: Connection, user_id: str) -> User | None:
    """Read a user inside a write transaction, locked until it ends (a read-then-write that stays safe)."""
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", user_id)
    return User.from_row(row) if row else None


async def lock_many(conn: Connection, user_ids: list[str]) -> dict[str, User]:
    """Lock these users' rows (tombstones aside) in one statement, in lock order; the rows by id."""
    sql = (
        f"SELECT * FROM users WHERE id IN ({marks(len(user_ids))}) AND deleted_at IS NULL"  # noqa: S608
        ' ORDER BY COALESCE(crm_id, \'\') COLLATE "C", id COLLATE "C" FOR UPDATE'
    )
    return {row["id"]: User.from_row(row) for row in await conn.fetch(sql, *user_ids)}


async def lock_by_crm_id(conn: Connection, crm_id: str) -> User | None:
    """The user linked to a CRM record (a tombstone too: news about a contact we deleted), locked."""
    row = await conn.fetchrow("SELECT * FROM users WHERE crm_id = $1 FOR UPDATE", crm_id)
    return User.from_row(row) if row else None


async def get(db: Database, user_id: str) -> User | None:
    """Read a user as last committed."""
    row = await db.fetchrow("SELECT * FROM users WHERE id = $1 AND deleted_at IS NULL", user_id)
    return User.from_row(row) if row else None


async def get_many(db: Database, user_ids: list[str]) -> dict[str, User]:
    """Read users as last committed, by id."""
    if not user_ids:
        return {}
    where = f"id IN ({marks(len(user_ids))}) AND deleted_at IS NULL"
    rows = await db.fetch(f"SELECT * FROM users WHERE {where}", *user_ids)  # noqa: S608 (placeholders)
    return {row["id"]: User.from_row(row) for row in rows}


async def ids_by_crm_id(db: Database, crm_ids: list[str]) -> dict[str, str]:
    """The local user id linked to each of these CRM ids, where one is."""
    if not crm_ids:
        return {}
    where = f"crm_id IN ({marks(len(crm_ids))}) AND deleted_at IS NULL"
    return {row[0]: row[1] for row in await db.fetch(f"SELECT crm_id, id FROM users WHERE {where}", *crm_ids)}  # noqa: S608


async def by_crm_id(db: Database, crm_id: str) -> User | None:
    """The local user linked to a CRM record, as last committed."""
    row = await db.fetchrow("SELECT * FROM users WHERE crm_id = $1 AND deleted_at IS NULL", crm_id)
    return User.from_row(row) if row else None


async def by_crm_email(db: Database, email: str) -> User | None:
    """The local user whose CRM record holds this email, as far as we last knew."""
    row = await db.fetchrow("SELECT * FROM users WHERE synced_email = $1 AND deleted_at IS NULL", email)
    return User.from_row(row) if row else None


_END = 2**63 - 1  # above every seq: where a newest-first listing starts


async def list_page(
    db: Database, status: str | None, limit: int, after: int, query: str | None = None, newest: bool = False
) -> tuple[list[User], int | None]:
    """A page of users after the seq cursor (0: from the start); returns the next cursor or None.

    Creation order, or newest first: then the cursor is the seq the next page starts below. status keeps one
    sync status; query keeps users whose name, email or phone holds it, ignoring case.
    """
    where, args = [f"seq {'<' if newest else '>'} $1", "deleted_at IS NULL"], [after or _END if newest else after]
    if status is not None:
        args.append(status)
        where.append(f"sync_status = ${len(args)}")
    if query:
        args.append(f"%{like_escape(query.lower())}%")
        n = len(args)
        where.append(
            f"(lower(name) LIKE ${n} ESCAPE '\\' OR email LIKE ${n} ESCAPE '\\' OR phone LIKE ${n} ESCAPE '\\')"
        )
    args.append(limit + 1)
    order = "seq DESC" if newest else "seq"
    sql = f"SELECT * FROM users WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ${len(args)}"  # noqa: S608 (fixed parts)
    rows = await db.fetch(sql, *args)
    next_cursor = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [User.from_row(r) for r in rows[:limit]], next_cursor


def like_escape(text: str) -> str:
    """text with LIKE's wildcards (and the escape character itself) taken literally, under ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def count_by_status(db: Database) -> dict[str, int]:
    """How many users are in each sync status."""
    rows = await db.fetch("SELECT sync_status, COUNT(*) FROM users WHERE deleted_at IS NULL GROUP BY sync_status")
    return {row[0]: int(row[1]) for row in rows}


async def update(db: Database, user_id: str, fields: dict[str, str]) -> tuple[User, int | None] | None:
    """Apply a local edit; when it changes anything, mark pending and queue a push. None if unknown.

    Raises DuplicateEmail when another user has the new email.
    """
    now = now_iso()

    async def edit(conn: Connection) -> tuple[User, int | None] | None:
        current = await lock(conn, user_id)
        if current is None:
            return None
        if current.deleting:
            raise Conflict("This contact is being deleted; it can no longer be edited.")
        name, email, phone = (fields.get(f, getattr(current, f)) for f in CONTACT_FIELDS)
        if (name, email, phone) == (current.name, current.email, current.phone):
            return current, None
        row = await conn.fetchrow(
            "UPDATE users SET name = $1, email = $2, phone = $3, sync_status = 'pending', next_retry_at = NULL,"
            " updated_at = $4 WHERE id = $5 RETURNING *",
            name, email, phone, now, user_id,
        )  # fmt: skip
        return User.from_row(row), await jobs.upsert(conn, jobs.USER_PUSH, user_id, now)

    try:
        # Run again when chosen to end a deadlock: waiting for the row, it may sit in other transactions' circle.
        return await db.run(edit)
    except UniqueViolation as exc:
        if exc.constraint != "users.email":
            raise
        owner = await db.fetchval("SELECT id FROM users WHERE email = $1", fields["email"])
        raise DuplicateEmail("Another user already has this email.", id=owner) from None


# The manual retry: a failed user is pending again (deleting again, for a failed delete), its job due now.
# For a user the CRM deleted this is the "create it again" choice: it has no crm_id, so its push creates.
_REQUEUE = (
    "UPDATE users SET sync_status = CASE WHEN delete_requested_at IS NOT NULL THEN 'deleting'"
    " WHEN sync_status = 'failed' THEN 'pending' ELSE sync_status END, next_retry_at = NULL"
)


async def requeue(db: Database, user_id: str) -> tuple[User, int] | None:
    """Queue the user's job now, whatever the state: the manual retry."""
    now = now_iso()

    async def retry(conn: Connection) -> tuple[User, int] | None:
        row = await conn.fetchrow(_REQUEUE + " WHERE id = $1 AND deleted_at IS NULL RETURNING *", user_id)
        if row is None:
            return None
        user = User.from_row(row)
        return user, await jobs.upsert(conn, jobs.USER_DELETE if user.deleting else jobs.USER_PUSH, user_id, now)

    return await db.run(retry)


async def requeue_failed(db: Database) -> list[int]:
    """Queue the job of every failed user, as requeue() does for one; return the job ids."""
    now = now_iso()

    async def retry_all(conn: Connection) -> list[int]:
        rows = await conn.fetch(
            _REQUEUE + " WHERE sync_status = 'failed' AND deleted_at IS NULL RETURNING id, delete_requested_at"
        )
        return [
            await jobs.upsert(conn, jobs.USER_DELETE if deleting else jobs.USER_PUSH, user_id, now)
            for user_id, deleting in sorted((row[0], row[1] is not None) for row in rows)
        ]

    return await db.run(retry_all)


async def record_push_intent(db: Database, user_id: str, fields: dict[str, str]) -> None:
    """Note, durably and before sending, the values a push is about to write to the CRM."""

    async def note(conn: Connection) -> None:
        user = await lock(conn, user_id)
        if user is None:
            return
        intents = user.intents()
        for field, value in fields.items():
            values = [v for v in intents.get(field, []) if v != value]
            intents[field] = [*values, value][-MAX_INTENTS:]
        await conn.execute("UPDATE users SET push_intents = $1 WHERE id = $2", json.dumps(intents), user_id)

    await db.run(note)


async def freeze_create_body(db: Database, user: User) -> str:
    """The body of the user's CRM create, frozen on first use so that every retry is the same request."""
    async with db.transaction() as conn:
        body = await conn.fetchval(
            "UPDATE users SET create_body = COALESCE(create_body, $1) WHERE id = $2 RETURNING create_body",
            json.dumps(user.contact()), user.id,
        )  # fmt: skip
    return body or json.dumps(user.contact())
