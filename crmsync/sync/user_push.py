"""The user push job: create or update the contact in the CRM, then record what happened."""

from __future__ import annotations

import json
import logging

from ..crm.attempts import Attempt
from ..crm.errors import CrmDuplicate, CrmEmailTaken, CrmError, CrmNotFound, CrmRejected, CrmStale, CrmUnavailable
from ..crm.types import CrmContact
from ..store import jobs, users
from ..store.errors import StoreError
from ..store.jobs import Job
from ..store.users import User
from ..timeutil import now_iso
from .email_clash import Blocked, clash
from .engine import SyncEngine
from .lifecycle import crm_lost
from .merging import merge_record
from .outcomes import LINKED_ELSEWHERE, Outcome, Pushed, failed, succeeded

logger = logging.getLogger(__name__)

MAX_MERGE_ROUNDS = 3
INTERNAL = "An unexpected error interrupted this sync; it will be retried."
NOT_OURS = "The CRM already has this email on contact {crm_id}, which this deleted contact never was."


class DeletedInCrm(Exception):
    """The CRM answered 404 for the record the user is linked to."""

    def __init__(self, crm_id: str) -> None:
        super().__init__(crm_id)
        self.crm_id = crm_id


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
    started = now_iso()
    with engine.metrics.sync_duration.time():
        try:
            pushed = await _push(engine, user, tries)
        except Blocked as blocked:
            await failed(engine, job, user, blocked.error, tries, waits_for=blocked.holder_id)
            return
        except DeletedInCrm as gone:
            await crm_lost(engine, user.id, gone.crm_id, "push")
            return
        except CrmError as exc:
            await failed(engine, job, user, exc, tries)
            return
        except StoreError:
            raise  # the database, not the push: the engine postpones the job quietly
        except Exception:
            # A bug or a surprise from the CRM must not strand the job: it gets the retry budget and alert.
            logger.exception("push_crashed", extra={"user_id": user.id, "job_id": job.id})
            await failed(engine, job, user, CrmUnavailable(INTERNAL), tries)
            return
        await succeeded(engine, [Outcome(job, user, pushed, tries, started)])


async def _push(engine: SyncEngine, user: User, tries: list[Attempt]) -> Pushed:
    if user.crm_id is None:
        return await _create(engine, user, tries)
    crm, crm_id = engine.crm, user.crm_id
    conditional = crm.capabilities.conditional_writes
    version = user.crm_updated_at if conditional else None  # the version our snapshot is based on, for If-Match
    try:
        for _ in range(MAX_MERGE_ROUNDS):
            changed = _differences(user.contact(), user.snapshot() or {})
            if not changed and user.sync_status == "synced":
                return Pushed(None)
            if not changed:
                # Nothing to send, yet not synced (a manual re-sync): check the record against the CRM.
                user, record = await _read_and_merge(engine, user, tries)
                if not _differences(user.contact(), user.snapshot() or {}):
                    return Pushed(record)
                version = record.version if conditional else None
                continue
            # Noted before sending: if the reply is lost, the record's new values are known to be ours.
            await users.record_push_intent(engine.db, user.id, changed)
            try:
                return Pushed(await crm.update_contact(crm_id, changed, tries, version=version))
            except CrmStale:
                # The CRM changed since our snapshot: merge its record first, then push what is still ours.
                user, record = await _read_and_merge(engine, user, tries)
                version = record.version
            except CrmEmailTaken as taken:
                await clash(engine, user, taken, changed["email"], tries)
    except CrmNotFound:
        raise DeletedInCrm(crm_id) from None
    raise CrmUnavailable("The CRM record kept changing while we pushed; the push will be retried.")


async def _create(engine: SyncEngine, user: User, tries: list[Attempt]) -> Pushed:
    # The create's body is frozen (at insert, or here after a rejection burned it), so a retried create
    # is the same idempotent request.
    body = json.loads(user.create_body or await users.freeze_create_body(engine.db, user))
    try:
        record = await engine.crm.create_contact(body, create_key(user), tries)
    except CrmDuplicate as duplicate:
        holder = await users.by_crm_id(engine.db, duplicate.crm_id)
        if holder is not None and holder.id != user.id:
            if holder.email != body["email"]:
                message = f"The CRM still has this email on the contact of user {holder.id}, whose change goes first."
                raise Blocked(holder.id, message) from None
            raise CrmRejected(LINKED_ELSEWHERE.format(crm_id=duplicate.crm_id), 409) from None
        if (current := await users.get(engine.db, user.id)) is not None and current.deleting:
            # A person deletes this user here: the contact the CRM has with its email is not ours to take
            # (its delete job would delete it); the create ends here, and so does the delete.
            raise CrmRejected(NOT_OURS.format(crm_id=duplicate.crm_id), 409) from None
        # Link to the contact the CRM already has; as the source of truth its values win.
        return Pushed(await engine.crm.get_contact(duplicate.crm_id, tries), linked=True)
    # Edits made since the create body was frozen are pushed by the next run, as an update: the
    # success stores the crm_id first and re-arms the job when local values differ.
    return Pushed(record)


async def _read_and_merge(engine: SyncEngine, user: User, tries: list[Attempt]) -> tuple[User, CrmContact]:
    """Read the CRM's record and merge it into the user as it is now."""
    assert user.crm_id is not None
    read_since = now_iso()
    record = await engine.crm.get_contact(user.crm_id, tries)
    return await merge_record(engine, user, record, read_since), record


def _differences(local: dict[str, str], remote: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in local.items() if remote.get(k) != v}
