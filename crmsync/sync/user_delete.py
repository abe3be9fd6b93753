"""The user_delete job: delete the contact's CRM record, then keep only a tombstone here."""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import timedelta

from ..crm.attempts import Attempt
from ..crm.errors import CrmDuplicate, CrmError, CrmNotFound
from ..events import user_event
from ..store import attempts, jobs, user_life, users
from ..store.jobs import Job, LeaseLost
from ..store.users import User
from ..timeutil import isoformat, now_iso, parse_iso
from .engine import SyncEngine
from .user_push import create_key

logger = logging.getLogger(__name__)

FAILED = "The delete in the CRM failed: {}"


async def delete_user_job(engine: SyncEngine, job: Job) -> None:
    """Delete the CRM record of a user a person deleted; retried like a push, then failed for good."""
    user = await _unless_pushing(engine, job)
    if user is None:
        return
    tries: list[Attempt] = []
    try:
        await _delete_in_crm(engine, user, tries)
    except CrmError as exc:
        await _failed(engine, job, user, exc, tries)
        return
    now = now_iso()
    try:
        async with engine.db.transaction() as conn:
            current = await users.lock(conn, user.id)
            await jobs.check_lease(conn, job)
            await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
            if current is not None:
                await user_life.tombstone(conn, current, now, "deleted by a person")
            await jobs.finish(conn, job, now)
    except LeaseLost:
        logger.warning("outcome_dropped", extra={"job_id": job.id, "user_id": user.id, "reason": "lease lost"})
        return
    logger.info("user_deleted", extra={"user_id": user.id, "crm_id": user.crm_id, "attempts": len(tries)})
    if engine.events:
        engine.events.publish({"type": "user_deleted", "user_id": user.id})


async def _unless_pushing(engine: SyncEngine, job: Job) -> User | None:
    """The user to delete, read under its lock; None when there is nothing to do now: the user is gone
    (the job is done), or a push of it is on the wire (the delete waits for its answer, which may bring
    the crm_id to delete, without using one of its attempts)."""
    now = engine.db.now()
    fallback = isoformat(parse_iso(now) + timedelta(seconds=engine.config.job_lease))
    async with engine.db.transaction() as conn:
        user = await users.lock(conn, job.entity_id)  # a push's outcome takes this lock before waking waiters
        if user is None or not user.deleting:
            await jobs.finish(conn, job, now)
            return None
        if not await jobs.in_flight(conn, user.id, now):
            return user
        await jobs.wait_for_push(conn, job, user.id, fallback, now)
    logger.info("user_delete_waiting", extra={"user_id": user.id, "job_id": job.id, "reason": "push in flight"})
    return None


async def _delete_in_crm(engine: SyncEngine, user: User, tries: list[Attempt]) -> None:
    """Delete the record; learn its id first when a create was sent but its answer never came."""
    crm_id = user.crm_id
    if crm_id is None and user.sync_attempts and user.create_body and engine.crm.capabilities.idempotency_keys:
        # Replaying the create with its key answers the record it made, if the CRM applied it.
        try:
            crm_id = (await engine.crm.create_contact(json.loads(user.create_body), create_key(user), tries)).crm_id
        except CrmDuplicate:
            crm_id = None  # the CRM's contact with this email is not one we made: never delete a person's
    if crm_id is None:
        return  # it never reached the CRM
    with contextlib.suppress(CrmNotFound):  # gone already (a person deleted it there too): the same end
        await engine.crm.delete_contact(crm_id, tries)


async def _failed(engine: SyncEngine, job: Job, user: User, exc: CrmError, tries: list[Attempt]) -> None:
    now = now_iso()
    retry = engine.next_retry(job) if exc.transient else None
    message = FAILED.format(exc.message)
    try:
        async with engine.db.transaction() as conn:
            await users.lock(conn, user.id)
            await jobs.check_lease(conn, job)
            await attempts.record(conn, user.id, user.sync_attempts + 1, tries)
            row = await user_life.delete_failed(conn, user.id, message, retry, len(tries))
            await jobs.fail(conn, job, exc.message, retry, now)
    except LeaseLost:
        return
    if engine.events and row is not None:
        engine.events.publish(user_event(row))
    extra = {"user_id": user.id, "crm_id": user.crm_id, "error": exc.message, "next_retry_at": retry}
    if retry is not None:
        logger.warning("user_delete_retrying", extra=extra)
    else:
        logger.error("user_delete_failed", extra=extra)
        engine.alerter.sync_failed("user", user.id, user.email, message)
