"""Recording what a push achieved: attempts, the user's new state, retries, alerts and log lines."""

from __future__ import annotations

import logging
from typing import Any

import aiosqlite
import attrs

from ..crm.client import Record
from ..crm.errors import CrmError
from ..db import fetch_one
from ..events import user_event
from ..store import attempts, jobs
from ..store.attempts import Attempt
from ..store.crm_changes import crm_fields
from ..store.jobs import Job
from ..store.users import CONTACT_FIELDS, User
from ..timeutil import now_iso
from .engine import SyncEngine

logger = logging.getLogger(__name__)


@attrs.frozen
class Pushed:
    """What the CRM holds after a successful push; record is None when there was nothing to send."""

    record: Record | None
    linked: bool = False


Outcome = tuple[Job, User, Pushed, list[Attempt]]


async def succeeded(engine: SyncEngine, outcomes: list[Outcome]) -> None:
    """Record successful pushes, many in one transaction (one commit for a whole batch)."""
    now = now_iso()
    again: list[int] = []
    stored: list[User] = []
    async with engine.db.transaction() as conn:
        for job, user, pushed, tries in outcomes:
            job_id, row = await _record_success(conn, job, user, pushed, tries, now)
            stored.append(row)
            if job_id is not None:
                again.append(job_id)
    for job_id in again:
        engine.pool.submit(job_id)
    publish_users(engine, stored)
    engine.metrics.syncs.labels("synced").inc(len(outcomes))
    for _, user, pushed, tries in outcomes:
        crm_id = pushed.record.get("crm_id") if pushed.record else user.crm_id
        log_tries(engine, user, crm_id, tries)
        logger.info("sync_succeeded", extra={"user_id": user.id, "crm_id": crm_id, "linked": pushed.linked,
                                             "attempts": len(tries)})  # fmt: skip


async def _record_success(
    conn: aiosqlite.Connection, job: Job, user: User, pushed: Pushed, tries: list[Attempt], now: str
) -> tuple[int | None, User]:
    """Store one success; return the job id when local values the CRM lacks need another push, and the row."""
    record = pushed.record
    await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
    finished = await jobs.finish(conn, job, now)
    params: dict[str, Any] = {"id": user.id, "now": now, "tries": len(tries)}
    sets = ["last_synced_at = :now", "last_error = NULL", "next_retry_at = NULL",
            "sync_attempts = sync_attempts + :tries"]  # fmt: skip
    in_crm = record if record is not None else (user.snapshot() or {})
    params.update({f"r_{k}": in_crm.get(k) for k in CONTACT_FIELDS})
    if record is not None:
        params.update(r_crm_id=record["crm_id"], r_updated_at=record["updated_at"])
        newer = "CASE WHEN :r_updated_at >= COALESCE(crm_updated_at, '') THEN {new} ELSE {old} END"
        sets += ["crm_id = :r_crm_id", "create_body = NULL"]
        # A CRM change applied while this push was in flight is newer than its answer: keep that snapshot.
        sets += [f"synced_{f} = {newer.format(new=f':r_{f}', old=f'synced_{f}')}" for f in CONTACT_FIELDS]
        sets += [f"{column} = MAX(COALESCE({column}, ''), :r_updated_at)"
                 for column in ("crm_updated_at", "crm_name_at", "crm_email_at", "crm_phone_at")]  # fmt: skip
    if pushed.linked:
        # Linked to a contact the CRM already had: its values win (those we could not accept aside).
        adopted = crm_fields(record or {})
        params.update({f"a_{f}": adopted.get(f, getattr(user, f)) for f in CONTACT_FIELDS})
        sets += ["name = :a_name", "email = :a_email", "phone = :a_phone"]
        sets.append("sync_status = CASE WHEN :a_name = :r_name AND :a_email = :r_email AND :a_phone = :r_phone"
                    " THEN 'synced' ELSE 'pending' END")  # fmt: skip
    else:
        # Still pending when the user was edited while this push was in flight (SET sees old values).
        sets.append("sync_status = CASE WHEN name = :r_name AND email = :r_email AND phone = :r_phone"
                    " THEN 'synced' ELSE 'pending' END")  # fmt: skip
    query = f"UPDATE users SET {', '.join(sets)} WHERE id = :id RETURNING *"  # noqa: S608
    row = User.from_row(await fetch_one(conn, query, params))
    # Local values the CRM still lacks (it answered with other values than we assumed) need a push.
    again = finished and row.sync_status == "pending"
    return (await jobs.upsert(conn, jobs.USER_PUSH, user.id, now) if again else None), row


async def failed(engine: SyncEngine, job: Job, user: User, exc: CrmError, tries: list[Attempt]) -> None:
    """Record a failed push: rescheduled with backoff while transient and within budget, else final."""
    now = now_iso()
    retry = engine.next_retry(job) if exc.transient else None
    run_after = retry[0] if retry else None
    async with engine.db.transaction() as conn:
        await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
        current = await jobs.fail(conn, job, exc.message, run_after, now)
        if current:
            # A rejected create burns its idempotency key: the next create is a new request.
            burn = "" if exc.transient or user.crm_id else ", create_body = NULL, create_gen = create_gen + 1"
            row = await fetch_one(
                conn,
                f"UPDATE users SET sync_status = 'failed', last_error = ?, next_retry_at = ?,"  # noqa: S608
                f" sync_attempts = sync_attempts + ?{burn} WHERE id = ? RETURNING *",
                (exc.message, run_after, len(tries), user.id),
            )
        else:
            await conn.execute("UPDATE users SET sync_attempts = sync_attempts + ? WHERE id = ?", (len(tries), user.id))
    log_tries(engine, user, user.crm_id, tries)
    if not current:
        return  # edited meanwhile: the new change runs now with a fresh budget
    publish_users(engine, [User.from_row(row)])
    extra = {"user_id": user.id, "crm_id": user.crm_id, "error": exc.message, "http_status": exc.status}
    engine.metrics.syncs.labels("retrying" if retry else "failed").inc()
    if retry is not None:
        engine.metrics.retries.labels("job").inc()
        engine.pool.submit_later(job.id, retry[1])
        logger.error("sync_failed", extra={**extra, "next_retry_at": run_after, "job_attempt": job.attempts + 1})
    else:
        logger.error("sync_failed", extra={**extra, "next_retry_at": None, "job_attempt": job.attempts + 1})
        engine.alerter.sync_failed("user", user.id, user.email, exc.message)


def log_tries(engine: SyncEngine, user: User, crm_id: str | None, tries: list[Attempt]) -> None:
    """One log line per CRM request made for the user, numbered like its history, and counted."""
    for number, attempt in enumerate(tries, start=user.sync_attempts + 1):
        engine.metrics.sync_attempts.labels(attempt.outcome).inc()
        level = logging.INFO if attempt.outcome == "ok" else logging.WARNING
        logger.log(level, "sync_attempt", extra={
            "user_id": user.id, "crm_id": crm_id, "attempt": number, "operation": attempt.operation,
            "outcome": attempt.outcome, "http_status": attempt.http_status, "duration_ms": attempt.duration_ms,
            "error": attempt.error,
        })  # fmt: skip


def publish_users(engine: SyncEngine, rows: list[User]) -> None:
    """Tell live dashboards where these users' syncs stand now."""
    if engine.events:
        for row in rows:
            engine.events.publish(user_event(row))
