"""The user's sync state after a push: what a success or a failure writes, in the caller's transaction."""

from __future__ import annotations

from typing import Any

import attrs

from ..crm.attempts import Attempt
from ..crm.types import CrmContact
from ..merge import FIELDS
from . import attempts, jobs, users
from .crm_changes import crm_values
from .database import Connection
from .dialect import named, named_many
from .errors import StoreError, UniqueViolation
from .jobs import Job, LeaseLost
from .users import User, lock_order


class Gone(StoreError):
    """The user was deleted (a tombstone now) while its push ran: the outcome has nothing to record."""


@attrs.frozen
class PushSuccess:
    """A push the CRM answered, on its way to the store; record is None when nothing needed sending."""

    job: Job
    user: User  # as claimed, before the push
    record: CrmContact | None
    linked: bool
    tries: list[Attempt]
    started: str  # when the push began, by our clock: CRM news after it may be newer than the answer


async def record_push_successes(
    conn: Connection, pushes: list[PushSuccess], now: str
) -> tuple[list[User | StoreError], list[int]]:
    """Store what the CRM answered for a batch of pushes, in the caller's transaction.

    Returns each push's user row as it now stands, or why nothing was written for it: Gone (the user
    was deleted meanwhile), LeaseLost (another run owns the job now) or UniqueViolation (another user
    is linked to the record the CRM answered with); and the ids of jobs this made due now (a push
    again, for local values the CRM still lacks, and jobs that waited for these pushes).
    The batch runs as a few set-based statements in one savepoint; only when a push's record turns out
    to be linked elsewhere is that undone and the batch run again push by push.
    """
    try:
        async with conn.savepoint():
            return await _record_together(conn, pushes, now)
    except UniqueViolation:
        pass  # find which push it was, below
    results: dict[int, User | StoreError] = {}
    due: list[int] = []
    # In lock order, so that two transactions locking several users never wait on each other in a circle.
    for i in sorted(range(len(pushes)), key=lambda i: lock_order(pushes[i].user.crm_id, pushes[i].user.id)):
        try:
            async with conn.savepoint():
                again, results[i] = await record_push_success(conn, pushes[i], now)
                due += await jobs.wake_waiting(conn, pushes[i].user.id, now)
        except (UniqueViolation, LeaseLost, Gone) as exc:
            results[i] = exc
            continue
        if again is not None:
            due.append(again)
    return [results[i] for i in range(len(pushes))], due


async def _record_together(
    conn: Connection, pushes: list[PushSuccess], now: str
) -> tuple[list[User | StoreError], list[int]]:
    # Every transaction locks users' rows before their jobs' rows: the same order everywhere, no deadlock.
    current = await users.lock_many(conn, [push.user.id for push in pushes])
    held = await jobs.lock_many(conn, [push.job.id for push in pushes])
    results: list[User | StoreError] = []
    live: list[tuple[PushSuccess, User]] = []
    for push in pushes:
        user = current.get(push.user.id)
        if user is None:  # deleted meanwhile (in the CRM, mirrored here): nothing left to record
            results.append(Gone(f"user {push.user.id} was deleted while its push ran"))
        elif held.get(push.job.id, (None, None))[0] != push.job.lease_token:
            results.append(LeaseLost(f"job {push.job.id} was claimed again since"))
        else:
            results.append(user)
            live.append((push, user))
    if not live:
        return results, []
    ids = [push.user.id for push, _ in live]
    await attempts.record_many(conn, [(push.user.id, push.user.sync_attempts + 1, push.tries) for push, _ in live])
    finished = {push.job.id for push, _ in live if held[push.job.id][1] == push.job.generation}
    done = [push.job for push, _ in live if push.job.id in finished]
    await jobs.finish_many(conn, done, [push.job for push, _ in live if push.job.id not in finished], now)
    updates = [_success_params(user, push, now) for push, user in live]
    await conn.executemany(*named_many(_SUCCESS.removesuffix(" RETURNING *"), [params for params, _ in updates]))
    rows = await users.lock_many(conn, ids)
    due = await jobs.wake_waiting_many(conn, ids, now)
    for (push, before), (_, status) in zip(live, updates, strict=True):
        # Local values the CRM still lacks need a push again, unless a person is deleting the contact.
        if push.job.id in finished and status == "pending" and not before.deleting:
            due.append(await jobs.upsert(conn, jobs.USER_PUSH, push.user.id, now))
    return [rows[r.id] if isinstance(r, User) else r for r in results], due


async def record_push_success(conn: Connection, push: PushSuccess, now: str) -> tuple[int | None, User]:
    """Store what the CRM answered for one push; return a job id to push again, and the row.

    The answer is the CRM's record as our write left it: taken whole, unless CRM news reached us
    while the push was on the wire, in which case a field keeps whichever of the two is newer.
    """
    # Every transaction locks a user's row before its job's row: the same order everywhere, no deadlock.
    current = await users.lock(conn, push.user.id)
    if current is None:  # deleted meanwhile (in the CRM, mirrored here): nothing left to record
        raise Gone(f"user {push.user.id} was deleted while its push ran")
    await jobs.check_lease(conn, push.job)  # raises LeaseLost: another run owns the job now
    await attempts.record(conn, push.user.id, push.user.sync_attempts + 1, push.tries)
    finished = await jobs.finish(conn, push.job, now)
    params, status = _success_params(current, push, now)
    row = User.from_row(await conn.fetchrow(*named(_SUCCESS, params)))
    # Local values the CRM still lacks (edited meanwhile, or answered otherwise than we sent) need a push,
    # unless a person is deleting the contact.
    again = finished and status == "pending" and not current.deleting
    return (await jobs.upsert(conn, jobs.USER_PUSH, push.user.id, now) if again else None), row


def _success_params(current: User, push: PushSuccess, now: str) -> tuple[dict[str, Any], str]:
    """The _SUCCESS statement's parameters for a push, given the user's row as locked; and the new status."""
    local, snapshot = current.contact(), current.snapshot() or {}
    times, version = current.crm_field_times(), current.crm_updated_at
    crm_id, intents = current.crm_id, current.push_intents
    if push.record is not None:
        clean, _ = crm_values(push.record)
        at, crm_id, intents = push.record.changed_at, push.record.crm_id, None  # every write is confirmed
        whole = current.crm_news_at is None or current.crm_news_at < push.started
        for field in clean:
            if whole or times[field] is None or at >= times[field]:
                snapshot[field], times[field] = clean[field], at
        version = at if whole else max(at, version or "")
        if push.linked:
            # Linked to a contact the CRM already had: its values win (those we could not accept aside).
            local = {**local, **clean}
    status = "synced" if all(local[f] == snapshot.get(f) for f in FIELDS) else "pending"
    params = {
        **{f"l_{f}": local[f] for f in FIELDS},
        **{f"s_{f}": snapshot.get(f) for f in FIELDS},
        **{f"t_{f}": times[f] for f in FIELDS},
        "crm_id": crm_id, "version": version, "intents": intents, "status": status, "now": now,
        "tries": len(push.tries), "id": push.user.id, "created": push.record is not None,
    }  # fmt: skip
    return params, status


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
