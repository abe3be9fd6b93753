"""What each kind of CRM event does to the local contact: contact.updated, .created and .deleted."""

from __future__ import annotations

import json

import attrs

from ..crm.types import WebhookEvent
from ..store import jobs, user_life
from ..store.crm_changes import CrmChange, apply_crm_change
from ..store.database import Connection
from ..store.users import User
from .lifecycle import appeared_in_crm


@attrs.frozen
class Options:
    """The settings that decide what CRM deletions and creations do here."""

    mirror_deletes: bool
    import_creates: bool


@attrs.frozen
class Handled:
    """What became of an event."""

    result: str
    user_id: str | None = None
    changed_fields: dict[str, str] = attrs.Factory(dict)
    conflicts: tuple[str, ...] = ()
    job_id: int | None = None
    detail: str | None = attrs.field(default=None, repr=False)  # kept with the stored event
    gone: tuple[User, User | None] | None = attrs.field(default=None, repr=False)  # deleted in the CRM: before, after


def change_of(event: WebhookEvent) -> CrmChange:
    """The event's fields as a CRM change (clean values, the CRM's own spelling, its timestamp; a whole record
    read from the CRM keeps the moment of its read, which makes it the truth)."""
    raw = {f: event.raw_fields.get(f, v) for f, v in event.fields.items()}
    return CrmChange(event.fields, raw, event.timestamp, event.read_since)


async def apply_event(
    conn: Connection, kind: str, crm_id: str, change: CrmChange, source: str, user: User | None, origin: str,
    now: str, options: Options,
) -> Handled | None:  # fmt: skip
    """Apply one event to the user linked to its crm_id (None: nobody is); None means unknown, retry later."""
    if kind == "contact.deleted":
        return await _deleted(conn, user, now, options)
    if user is None:
        if kind == "contact.created":
            result, linked = await appeared_in_crm(conn, crm_id, change, source, options.import_creates)
            if result == "waiting":
                return None  # unknown for now: the CRM delivers it again
            return Handled(result, linked.id if linked else None, change.clean if linked else {})
        return None
    if user.deleted_at is not None or user.deleting:
        return Handled("ignored", user.id, detail="the contact is deleted here, or being deleted")
    return await _updated(conn, user, change, origin, now)


async def _updated(conn: Connection, user: User, change: CrmChange, origin: str, now: str) -> Handled:
    applied = await apply_crm_change(conn, user, change, origin)
    merged = applied.merged
    conflicts = tuple(c.field for c in merged.conflicts) if merged else ()
    detail = json.dumps({"changed_fields": merged.changed, "conflicts": conflicts}) if merged else None
    job_id = applied.job_id
    if applied.suspicious:
        # Older than a stamp of ours that lies in the future, yet different: ask the CRM what it holds now.
        job_id = await jobs.upsert(conn, jobs.USER_RECONCILE, user.id, now)
        detail = json.dumps({"reconcile": "our field times lie in the future; reading the record"})
    result = "stale" if applied.stale else "applied"
    return Handled(result, user.id, merged.changed if merged else {}, conflicts, job_id, detail)


async def _deleted(conn: Connection, user: User | None, now: str, options: Options) -> Handled:
    if user is None or user.deleted_at is not None:
        return Handled("ignored", user.id if user else None, detail="no contact here has that record")
    if user.deleting:  # a person deleted it here too (or this is our own delete's echo): the same end
        await user_life.tombstone(conn, user, now, "deleted here and in the CRM")
        return Handled("deleted", user.id)
    after = await user_life.deleted_in_crm(conn, user, now, options.mirror_deletes)
    return Handled("deleted_in_crm", user.id, gone=(user, after))
