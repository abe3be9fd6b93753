"""The user's sync state after a push: what a success or a failure writes, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..crm.attempts import Attempt
from ..merge import FIELDS
from . import attempts, jobs, users
from .crm_changes import crm_values
from .database import Connection
from .dialect import named
from .errors import StoreError
from .jobs import Job
from .users import User


class Gone(StoreError):
    """The user was deleted (a tombstone now) while its push ran: the outcome has nothing to record."""


async def record_push_success(
    conn: Connection,
    job: Job,
    user: User,
    record: Mapping[str, Any] | None,
    linked: bool,
    tries: list[Attempt],
    started: str,
    now: str,
) -> tuple[int | None, User]:
    """Store what the CRM answered (None: nothing needed sending); return a job id to push again, and the row.

    The answer is the CRM's record as our write left it: taken whole, unless CRM news reached us
    while the push was on the wire, in which case a field keeps whichever of the two is newer.
    """
    # Every transaction locks a user's row before its job's row: the same order everywhere, no deadlock.
    current = await users.lock(conn, user.id)
    if current is None:  # deleted meanwhile (in the CRM, mirrored here): nothing left to record
        raise Gone(f"user {user.id} was deleted while its push ran")
    await jobs.check_lease(conn, job)  # raises LeaseLost: another run owns the job now
    await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
    finished = await jobs.finish(conn, job, now)
    local, snapshot = current.contact(), current.snapshot() or {}
    times, version = current.crm_field_times(), current.crm_updated_at
    crm_id, intents = current.crm_id, current.push_intents
    if record is not None:
        clean, _ = crm_values(record)
        at, crm_id, intents = record["updated_at"], record["crm_id"], None  # every write we made is confirmed
        whole = current.crm_news_at is None or current.crm_news_at < started
        for field in clean:
            if whole or times[field] is None or at >= times[field]:
                snapshot[field], times[field] = clean[field], at
        version = at if whole else max(at, version or "")
        if linked:
            # Linked to a contact the CRM already had: its values win (those we could not accept aside).
            local = {**local, **clean}
    status = "synced" if all(local[f] == snapshot.get(f) for f in FIELDS) else "pending"
    params = {
        **{f"l_{f}": local[f] for f in FIELDS},
        **{f"s_{f}": snapshot.get(f) for f in FIELDS},
        **{f"t_{f}": times[f] for f in FIELDS},
        "crm_id": crm_id, "version": version, "intents": intents, "status": status, "now": now,
        "tries": len(tries), "id": user.id, "created": record is not None,
    }  # fmt: skip
    row = User.from_row(await conn.fetchrow(*named(_SUCCESS, params)))
    # Local values the CRM still lacks (edited meanwhile, or answered otherwise than we sent) need a push,
    # unless a person is deleting the contact.
    again = finished and status == "pending" and not current.deleting
    return (await jobs.upsert(conn, jobs.USER_PUSH, user.id, now) if again else None), row


_SUCCESS = (
    "UPDATE users SET name = :l_name, email = :l_email, phone = :l_phone, synced_name = :s_name,"
    " synced_email = :s_email, synced_phone = :s_phone, crm_name_at = :t_name, crm_email_at = :t_email,"
    " crm_phone_at = :t_phone, crm_updated_at = :version, crm_id = :crm_id, push_intents = :intents,"
    " crm_news_at = CASE WHEN :created THEN :now ELSE crm_news_at END,"
    " create_body = CASE WHEN :created THEN NULL ELSE create_body END,"
    " crm_deleted_id = CASE WHEN :created THEN NULL ELSE crm_deleted_id END,"
    " linked_at = COALESCE(linked_at, CASE WHEN :created THEN :now END),"
    " sync_status = CASE WHEN delete_requested_at IS NOT NULL THEN 'deleting' ELSE :status END,"
    " last_synced_at = :now, last_error = NULL, next_retry_at = NULL, sync_attempts = sync_attempts + :tries"
    " WHERE id = :id RETURNING *"
)


async def record_push_failure(
    conn: Connection,
    job: Job,
    user: User,
    message: str,
    run_after: str | None,
    burn_create: bool,
    tries: list[Attempt],
    now: str,
    waits_for: str | None = None,
) -> User | None:
    """Store a failed push: retried at run_after, or failed for good; None when a newer change re-armed the job."""
    if await users.lock(conn, user.id) is None:
        raise Gone(f"user {user.id} was deleted while its push ran")
    await jobs.check_lease(conn, job)  # raises LeaseLost: another run owns the job now
    await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
    if not await jobs.fail(conn, job, message, run_after, now, waits_for):
        await conn.execute("UPDATE users SET sync_attempts = sync_attempts + $1 WHERE id = $2", len(tries), user.id)
        return None
    # A rejected create burns its idempotency key: the next create is a new request.
    row = await conn.fetchrow(_BURNED if burn_create else _FAILED, message, run_after, len(tries), user.id)
    return User.from_row(row)


# A contact being deleted stays 'deleting': its delete job decides what becomes of it.
_FAILED = (
    "UPDATE users SET sync_status = CASE WHEN delete_requested_at IS NULL THEN 'failed' ELSE 'deleting' END,"
    " last_error = $1, next_retry_at = $2, sync_attempts = sync_attempts + $3 WHERE id = $4 RETURNING *"
)
_BURNED = (
    "UPDATE users SET sync_status = CASE WHEN delete_requested_at IS NULL THEN 'failed' ELSE 'deleting' END,"
    " last_error = $1, next_retry_at = $2,"
    " sync_attempts = sync_attempts + $3, create_body = NULL, create_gen = create_gen + 1 WHERE id = $4 RETURNING *"
)


async def mark_push_failed(conn: Connection, user_id: str, message: str) -> User | None:
    """Show the user's sync as failed for good with this message (its job already failed)."""
    row = await conn.fetchrow(
        "UPDATE users SET sync_status = 'failed', last_error = $1, next_retry_at = NULL WHERE id = $2 RETURNING *",
        message, user_id,
    )  # fmt: skip
    return User.from_row(row) if row else None


async def mark_deleted_in_crm(conn: Connection, user_id: str, message: str, now: str) -> User | None:
    """The user's CRM record is gone: failed for good, and never silently created again."""
    user = await mark_push_failed(conn, user_id, message)
    await jobs.fail_all_for(conn, user_id, message, now)
    return user
