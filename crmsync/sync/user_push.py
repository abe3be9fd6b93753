"""The user push job: create or update the contact in the CRM, then record what happened."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import attrs

from ..crm.client import Record
from ..crm.errors import CrmDuplicate, CrmError, CrmNotFound, CrmRejected, CrmStale, CrmUnavailable
from ..store import attempts, jobs, users
from ..store.attempts import Attempt
from ..store.crm_changes import apply_crm_change
from ..store.jobs import Job
from ..store.users import CONTACT_FIELDS, User
from ..timeutil import isoformat, now_iso, parse_iso
from .engine import SyncEngine

logger = logging.getLogger(__name__)

MAX_MERGE_ROUNDS = 3
DELETED = "The contact was deleted in the CRM."


@attrs.frozen
class Pushed:
    """What the CRM holds after a successful push; record is None when there was nothing to send."""

    record: Record | None
    linked: bool = False


async def push_user(engine: SyncEngine, job: Job) -> None:
    """Carry the user's latest local state to the CRM."""
    user = await users.get(engine.db, job.entity_id)
    if user is None:
        async with engine.db.transaction() as conn:
            await jobs.finish(conn, job, now_iso())
        return
    tries: list[Attempt] = []
    try:
        pushed = await _push(engine, user, tries)
    except CrmError as exc:
        await _failed(engine, job, user, exc, tries)
        return
    try:
        await _succeeded(engine, job, user, pushed, tries)
    except sqlite3.IntegrityError:
        crm_id = pushed.record.get("crm_id") if pushed.record else None
        error = CrmRejected(f"The CRM record {crm_id} with this email is already linked to another user.", 409)
        await _failed(engine, job, user, error, tries)


async def _push(engine: SyncEngine, user: User, tries: list[Attempt]) -> Pushed:
    crm = engine.crm
    if user.crm_id is None:
        # create_body is frozen at insert, so a retried create is the same idempotent request.
        body = json.loads(user.create_body) if user.create_body else user.contact()
        try:
            record = await crm.create_user(body, f"crmsync-user-{user.id}-{user.create_gen}", tries)
        except CrmDuplicate as duplicate:
            # Link to the contact the CRM already has; as the source of truth its values win.
            return Pushed(await crm.get_user(duplicate.crm_id, tries), linked=True)
        later_edits = _differences(user.contact(), record)
        if later_edits:
            record = await crm.update_user(record["crm_id"], later_edits, tries, version=record.get("updated_at"))
        return Pushed(record)
    version = user.crm_updated_at  # the record version our snapshot is based on, for If-Match
    try:
        for _ in range(MAX_MERGE_ROUNDS):
            changed = _differences(user.contact(), user.snapshot() or {})
            if not changed and user.sync_status == "synced":
                return Pushed(None)
            if not changed:
                # Nothing to send, yet not synced (a manual re-sync): check the record against the CRM.
                record = await crm.get_user(user.crm_id, tries)
                user = await _merge_current(engine, user, record)
                if not _differences(user.contact(), user.snapshot() or {}):
                    return Pushed(record)
                version = record.get("updated_at")
                continue
            try:
                return Pushed(await crm.update_user(user.crm_id, changed, tries, version=version))
            except CrmStale:
                # The CRM changed since our snapshot: merge its record first, then push what is still ours.
                record = await crm.get_user(user.crm_id, tries)
                user = await _merge_current(engine, user, record)
                version = record.get("updated_at")
    except CrmNotFound:
        raise CrmRejected(DELETED, 404) from None
    raise CrmUnavailable("The CRM record kept changing while we pushed; the push will be retried.")


async def _merge_current(engine: SyncEngine, user: User, record: Record) -> User:
    async with engine.db.transaction() as conn:
        fields = {f: record[f] for f in CONTACT_FIELDS if isinstance(record.get(f), str)}
        changed_at = isoformat(parse_iso(str(record.get("updated_at"))))
        applied = await apply_crm_change(conn, user, fields, changed_at, "push", queue_push=False)
    return applied.user


def _differences(local: dict[str, str], remote: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in local.items() if remote.get(k) != v}


async def _succeeded(engine: SyncEngine, job: Job, user: User, pushed: Pushed, tries: list[Attempt]) -> None:
    now = now_iso()
    record = pushed.record
    async with engine.db.transaction() as conn:
        await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
        finished = await jobs.finish(conn, job, now)
        params: dict[str, Any] = {"id": user.id, "now": now, "tries": len(tries)}
        sets = ["last_synced_at = :now", "last_error = NULL", "next_retry_at = NULL",
                "sync_attempts = sync_attempts + :tries"]  # fmt: skip
        in_crm = record if record is not None else (user.snapshot() or {})
        params.update({f"r_{k}": in_crm.get(k) for k in CONTACT_FIELDS})
        if record is not None:
            params.update(r_crm_id=record.get("crm_id"), r_updated_at=record.get("updated_at"))
            sets += ["crm_id = :r_crm_id", "create_body = NULL", "synced_name = :r_name", "synced_email = :r_email",
                     "synced_phone = :r_phone"]  # fmt: skip
            sets += [f"{column} = MAX(COALESCE({column}, ''), :r_updated_at)"
                     for column in ("crm_updated_at", "crm_name_at", "crm_email_at", "crm_phone_at")]  # fmt: skip
        if pushed.linked:
            sets += ["name = :r_name", "email = :r_email", "phone = :r_phone", "sync_status = 'synced'"]
        else:
            # Still pending when the user was edited while this push was in flight (SET sees old values).
            sets.append("sync_status = CASE WHEN name = :r_name AND email = :r_email AND phone = :r_phone"
                        " THEN 'synced' ELSE 'pending' END")  # fmt: skip
        async with conn.execute(
            f"UPDATE users SET {', '.join(sets)} WHERE id = :id RETURNING sync_status",  # noqa: S608
            params,
        ) as cursor:
            status = (await cursor.fetchone())[0]
        # Local values the CRM still lacks (it answered with other values than we assumed) need a push.
        again = await jobs.upsert(conn, jobs.USER_PUSH, user.id, now) if finished and status == "pending" else None
    if again is not None:
        engine.pool.submit(again)
    _log_tries(user, record.get("crm_id") if record else user.crm_id, tries)
    logger.info("sync_succeeded", extra={"user_id": user.id, "crm_id": record.get("crm_id") if record else user.crm_id,
                                         "linked": pushed.linked, "attempts": len(tries)})  # fmt: skip


async def _failed(engine: SyncEngine, job: Job, user: User, exc: CrmError, tries: list[Attempt]) -> None:
    now = now_iso()
    retry = engine.next_retry(job) if exc.transient else None
    run_after = retry[0] if retry else None
    async with engine.db.transaction() as conn:
        await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
        current = await jobs.fail(conn, job, exc.message, run_after, now)
        if current:
            # A rejected create burns its idempotency key: the next create is a new request.
            burn = "" if exc.transient or user.crm_id else ", create_body = NULL, create_gen = create_gen + 1"
            await conn.execute(
                f"UPDATE users SET sync_status = 'failed', last_error = ?, next_retry_at = ?,"  # noqa: S608
                f" sync_attempts = sync_attempts + ?{burn} WHERE id = ?",
                (exc.message, run_after, len(tries), user.id),
            )
        else:
            await conn.execute("UPDATE users SET sync_attempts = sync_attempts + ? WHERE id = ?", (len(tries), user.id))
    _log_tries(user, user.crm_id, tries)
    if not current:
        return  # edited meanwhile: the new change runs now with a fresh budget
    extra = {"user_id": user.id, "crm_id": user.crm_id, "error": exc.message, "http_status": exc.status}
    if retry is not None:
        engine.pool.submit_later(job.id, retry[1])
        logger.error("sync_failed", extra={**extra, "next_retry_at": run_after, "job_attempt": job.attempts + 1})
    else:
        logger.error("sync_failed", extra={**extra, "next_retry_at": None, "job_attempt": job.attempts + 1})
        engine.alerter.sync_failed("user", user.id, user.email, exc.message)


def _log_tries(user: User, crm_id: str | None, tries: list[Attempt]) -> None:
    for number, attempt in enumerate(tries, start=user.sync_attempts + 1):
        level = logging.INFO if attempt.outcome == "ok" else logging.WARNING
        logger.log(level, "sync_attempt", extra={
            "user_id": user.id, "crm_id": crm_id, "attempt": number, "operation": attempt.operation,
            "outcome": attempt.outcome, "http_status": attempt.http_status, "duration_ms": attempt.duration_ms,
            "error": attempt.error,
        })  # fmt: skip
