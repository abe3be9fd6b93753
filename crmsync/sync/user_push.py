"""The user push job: create or update the contact in the CRM, then record what happened."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from ..crm.client import Record
from ..crm.errors import CrmDuplicate, CrmError, CrmNotFound, CrmRejected, CrmStale, CrmUnavailable
from ..errors import DuplicateEmail
from ..store import jobs, users
from ..store.attempts import Attempt
from ..store.crm_changes import apply_crm_record
from ..store.jobs import Job
from ..store.users import User
from ..timeutil import now_iso
from .engine import SyncEngine
from .outcomes import Pushed, failed, succeeded

logger = logging.getLogger(__name__)

MAX_MERGE_ROUNDS = 3
DELETED = "The contact was deleted in the CRM."
INTERNAL = "An unexpected error interrupted this sync; it will be retried."


def create_key(user: User) -> str:
    """The Idempotency-Key of the user's create: the same for every retry of the same frozen body."""
    return f"crmsync-user-{user.id}-{user.create_gen}"


async def push_user(engine: SyncEngine, job: Job) -> None:
    """Carry the user's latest local state to the CRM."""
    user = await users.get(engine.db, job.entity_id)
    if user is None:
        async with engine.db.transaction() as conn:
            await jobs.finish(conn, job, now_iso())
        return
    tries: list[Attempt] = []
    with engine.inflight.hold([user.id]), engine.metrics.sync_duration.time():
        try:
            pushed = await _push(engine, user, tries)
        except CrmError as exc:
            await failed(engine, job, user, exc, tries)
            return
        except Exception:
            # A bug or a surprise from the CRM must not strand the job: it gets the retry budget and alert.
            logger.exception("push_crashed", extra={"user_id": user.id, "job_id": job.id})
            await failed(engine, job, user, CrmUnavailable(INTERNAL), tries)
            return
        try:
            await succeeded(engine, [(job, user, pushed, tries)])
        except sqlite3.IntegrityError:
            crm_id = pushed.record.get("crm_id") if pushed.record else None
            error = CrmRejected(f"The CRM record {crm_id} with this email is already linked to another user.", 409)
            await failed(engine, job, user, error, tries)


async def _push(engine: SyncEngine, user: User, tries: list[Attempt]) -> Pushed:
    crm = engine.crm
    if user.crm_id is None:
        # create_body is frozen at insert, so a retried create is the same idempotent request.
        body = json.loads(user.create_body) if user.create_body else user.contact()
        try:
            record = await crm.create_user(body, create_key(user), tries)
        except CrmDuplicate as duplicate:
            # Link to the contact the CRM already has; as the source of truth its values win.
            return Pushed(await crm.get_user(duplicate.crm_id, tries), linked=True)
        # Edits made since the create body was frozen are pushed by the next run, as an update: the
        # success below stores the crm_id first and re-arms the job when local values differ.
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
    """Merge the CRM's record into the user as it is now, not as it was when the push began."""
    try:
        async with engine.db.transaction() as conn:
            applied = await apply_crm_record(conn, user.id, record, "push", queue_push=False)
    except DuplicateEmail:
        raise CrmRejected("The CRM gave this contact an email that another local user has.", 409) from None
    return applied.user if applied else user


def _differences(local: dict[str, str], remote: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in local.items() if remote.get(k) != v}
