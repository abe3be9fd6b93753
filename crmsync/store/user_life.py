"""A contact's life beyond pushes: deleted here, deleted in the CRM, created in the CRM, linked by email."""

from __future__ import annotations

import json
import uuid

from ..merge import FIELDS
from . import jobs, users
from .crm_changes import CrmChange
from .database import Connection, Database
from .errors import UniqueViolation
from .meetings import CACHE_CHANNEL
from .users import User

DELETED_IN_CRM = "The contact was deleted in the CRM."


async def record_event(
    conn: Connection, user_id: str, kind: str, now: str, crm_id: str | None = None, detail: str | None = None
) -> None:
    """Note something that happened to the contact, for its history."""
    await conn.execute(
        "INSERT INTO user_events (user_id, at, kind, crm_id, detail) VALUES ($1, $2, $3, $4, $5)",
        user_id, now, kind, crm_id, detail,
    )  # fmt: skip


async def delete(db: Database, user_id: str, now: str) -> tuple[str, User | None]:
    """A person deletes a contact: 'missing', 'deleted' (at once), or 'deleting' with the user as it is now."""

    async def body(conn: Connection) -> tuple[str, User | None]:
        user = await users.lock(conn, user_id)
        if user is None:
            return "missing", None
        row, _ = await request_delete(conn, user, now)
        return ("deleted", None) if row is None else ("deleting", row)

    return await db.run(body)


async def request_delete(conn: Connection, user: User, now: str) -> tuple[User | None, int | None]:
    """A person deletes the contact: at once when it never reached the CRM (None, None), else it turns
    'deleting' and a job deletes the CRM record (the user, the job id). The caller holds the row lock."""
    # Nothing to delete in the CRM: no create ever went out, or none went out that the CRM may have
    # applied (every create since was refused, burning its key; or the CRM deleted the record and no
    # new create has been sent since).
    nothing_there = user.sync_attempts == 0 or user.create_body is None
    if user.crm_id is None and nothing_there and not await jobs.in_flight(conn, user.id, now):
        await tombstone(conn, user, now, "deleted before it reached the CRM")
        return None, None
    row = await conn.fetchrow(
        "UPDATE users SET sync_status = 'deleting', delete_requested_at = COALESCE(delete_requested_at, $1),"
        " last_error = NULL, next_retry_at = NULL, updated_at = $1 WHERE id = $2 RETURNING *",
        now, user.id,
    )  # fmt: skip
    await jobs.cancel(conn, jobs.USER_PUSH, user.id, now)  # a push running now lands first; the delete waits
    job_id = await jobs.upsert(conn, jobs.USER_DELETE, user.id, now)
    await record_event(conn, user.id, "delete_requested", now, user.crm_id)
    return User.from_row(row), job_id


async def delete_failed(conn: Connection, user_id: str, message: str, retry_at: str | None, tries: int) -> User | None:
    """The CRM delete failed: still 'deleting' while it will be retried, 'failed' once it will not."""
    row = await conn.fetchrow(
        "UPDATE users SET sync_status = $1, last_error = $2, next_retry_at = $3,"
        " sync_attempts = sync_attempts + $4 WHERE id = $5 AND deleted_at IS NULL RETURNING *",
        "deleting" if retry_at else "failed", message, retry_at, tries, user_id,
    )  # fmt: skip
    return User.from_row(row) if row else None


async def tombstone(conn: Connection, user: User, now: str, reason: str) -> None:
    """Keep only id, crm_id and deleted_at: the name, email and phone go, here and in the history."""
    await conn.execute(
        "UPDATE users SET name = NULL, email = NULL, phone = NULL, synced_name = NULL, synced_email = NULL,"
        " synced_phone = NULL, create_body = NULL, push_intents = NULL, last_error = NULL, next_retry_at = NULL,"
        " sync_status = 'deleting', deleted_at = $1, updated_at = $1 WHERE id = $2",
        now, user.id,
    )  # fmt: skip
    meetings = [row[0] for row in await conn.fetch(
        "DELETE FROM meeting_attendees WHERE user_id = $1 RETURNING meeting_id", user.id
    )]  # fmt: skip
    for meeting_id in meetings:
        await conn.notify(CACHE_CHANNEL, meeting_id)
    await conn.execute("DELETE FROM conflicts WHERE user_id = $1", user.id)
    await conn.execute("UPDATE webhook_events SET payload = '{}', detail = NULL WHERE user_id = $1", user.id)
    await conn.execute(
        "UPDATE sync_jobs SET state = 'done', updated_at = $1 WHERE entity_id = $2 AND state = 'queued'", now, user.id
    )
    await record_event(conn, user.id, "deleted", now, user.crm_id or user.crm_deleted_id, reason)


async def deleted_in_crm(conn: Connection, user: User, now: str, mirror: bool) -> User | None:
    """The CRM no longer has the user's record: mirror the deletion (None), or unlink the user and show it
    failed until a person chooses (re-create it in the CRM, or delete it here)."""
    crm_id = user.crm_id
    await record_event(conn, user.id, "deleted_in_crm", now, crm_id)
    if mirror or user.deleting:
        await tombstone(conn, user, now, "deleted in the CRM")
        return None
    row = await conn.fetchrow(
        "UPDATE users SET crm_id = NULL, crm_deleted_id = $1, linked_at = NULL, synced_name = NULL,"
        " synced_email = NULL, synced_phone = NULL, crm_updated_at = NULL, crm_name_at = NULL, crm_email_at = NULL,"
        " crm_phone_at = NULL, push_intents = NULL, create_body = NULL, create_gen = create_gen + 1,"
        " sync_status = 'failed', last_error = $2, next_retry_at = NULL, updated_at = $3 WHERE id = $4 RETURNING *",
        crm_id, DELETED_IN_CRM, now, user.id,
    )  # fmt: skip
    await jobs.fail_all_for(conn, user.id, DELETED_IN_CRM, now)
    return User.from_row(row)


async def unlinked_with_email(conn: Connection, email: str) -> User | None:
    """A local user not yet linked to the CRM whose email (or whose frozen create) is this one, locked."""
    row = await conn.fetchrow(
        "SELECT * FROM users WHERE crm_id IS NULL AND deleted_at IS NULL AND email = $1 FOR UPDATE", email
    )
    return User.from_row(row) if row else None


async def link(conn: Connection, user: User, crm_id: str, change: CrmChange, now: str) -> User:
    """Link an unlinked user to the CRM record that has its email; the CRM's values win."""
    local = {f: change.clean.get(f, getattr(user, f)) for f in FIELDS}
    row = await conn.fetchrow(
        "UPDATE users SET crm_id = $1, linked_at = $2, crm_deleted_id = NULL, name = $3, email = $4, phone = $5,"
        " synced_name = $3, synced_email = $4, synced_phone = $5, crm_updated_at = $6, crm_name_at = $6,"
        " crm_email_at = $6, crm_phone_at = $6, crm_news_at = $2, create_body = NULL, sync_status = 'synced',"
        " last_error = NULL, next_retry_at = NULL, last_synced_at = $2, updated_at = $2 WHERE id = $7 RETURNING *",
        crm_id, now, local["name"], local["email"], local["phone"], change.at, user.id,
    )  # fmt: skip
    await jobs.cancel(conn, jobs.USER_PUSH, user.id, now)
    await record_event(conn, user.id, "linked", now, crm_id, "by email, to a contact already in the CRM")
    return User.from_row(row)


async def import_record(conn: Connection, crm_id: str, change: CrmChange, now: str) -> User | None:
    """A contact created in the CRM appears here, synced; None when its fields are not all usable or its
    email is taken by a user linked elsewhere."""
    if set(change.clean) != set(FIELDS):
        return None
    user_id = str(uuid.uuid4())
    name, email, phone = (change.clean[f] for f in FIELDS)
    try:
        async with conn.savepoint():
            row = await conn.fetchrow(
                "INSERT INTO users (id, name, email, phone, sync_status, crm_id, linked_at, created_at, updated_at,"
                " last_synced_at, synced_name, synced_email, synced_phone, crm_updated_at, crm_name_at, crm_email_at,"
                " crm_phone_at, crm_news_at) VALUES ($1, $2, $3, $4, 'synced', $5, $6, $6, $6, $6, $2, $3, $4, $7,"
                " $7, $7, $7, $6) RETURNING *",
                user_id, name, email, phone, crm_id, now, change.at,
            )  # fmt: skip
    except UniqueViolation:
        return None
    await record_event(conn, user_id, "created_in_crm", now, crm_id, json.dumps({"source": "crm"}))
    return User.from_row(row)


async def events(db: Database, user_id: str, limit: int) -> list[dict[str, object]]:
    """The user's lifecycle events, newest first."""
    rows = await db.fetch(
        "SELECT id, at, kind, crm_id, detail FROM user_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        user_id, limit,
    )  # fmt: skip
    return [{"type": "lifecycle", "at": r["at"], "event": r["kind"], "crm_id": r["crm_id"], "detail": r["detail"]}
            for r in rows]  # fmt: skip
