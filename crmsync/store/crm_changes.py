"""Apply what the CRM holds (a webhook's news, or a record read from it) to the local user, in one transaction."""

from __future__ import annotations

import logging

import attrs

from ..crm.types import CrmContact
from ..errors import DuplicateEmail
from ..merge import FIELDS, Merge, merge
from ..timeutil import now_iso
from ..validation import normalise_contact
from . import jobs, users
from .database import Connection
from .dialect import named
from .errors import UniqueViolation
from .users import User

logger = logging.getLogger(__name__)


@attrs.frozen
class CrmChange:
    """CRM values as we store them (clean) and as the CRM holds them (raw), stamped by the CRM.

    read_since is set for a record read straight from the CRM: the moment (our clock) the read began.
    """

    clean: dict[str, str]
    raw: dict[str, str]
    at: str
    read_since: str | None = None


@attrs.frozen
class Applied:
    """What applying a CRM change did; merged is None when every field was already newer here."""

    user: User
    merged: Merge | None
    job_id: int | None = None
    # A webhook older than what we hold, though it differs from us and our stamp lies in the future.
    suspicious: bool = False

    @property
    def stale(self) -> bool:
        """True when the change was older than what we already knew for every field it named."""
        return self.merged is None


def crm_values(contact: CrmContact) -> tuple[dict[str, str], dict[str, str]]:
    """The contact fields of a CRM record that pass our validation: (normalised, as the CRM holds them).

    A field the CRM holds in a form we would reject is left out (and logged), never stored.
    """
    present = {f: v for f in FIELDS if isinstance(v := contact.fields.get(f), str)}
    clean, rejected = normalise_contact(present)
    if rejected:
        logger.warning("crm_fields_rejected", extra={"crm_id": contact.crm_id, "fields": rejected})
    return clean, {f: present[f] for f in clean}


def record_change(contact: CrmContact, read_since: str) -> CrmChange:
    """A whole record read from the CRM at read_since, as a change."""
    clean, raw = crm_values(contact)
    return CrmChange(clean, raw, contact.changed_at, read_since)


async def apply_crm_record(
    conn: Connection, user_id: str, change: CrmChange, origin: str, queue_push: bool = True
) -> Applied | None:
    """Merge a record read from the CRM into the user as it is now (locked inside the caller's transaction)."""
    user = await users.lock(conn, user_id)
    if user is None:
        return None
    if user.deleting:  # a person is deleting it: CRM news changes nothing any more
        return Applied(user, None)
    return await apply_crm_change(conn, user, change, origin, queue_push)


def _authoritative(user: User, change: CrmChange) -> bool:
    """A record read straight from the CRM is the truth, unless news of the CRM (a webhook, a push's answer,
    another read) reached us while it was being read."""
    return change.read_since is not None and (user.crm_news_at is None or user.crm_news_at < change.read_since)


async def apply_crm_change(
    conn: Connection, user: User, change: CrmChange, origin: str, queue_push: bool = True
) -> Applied:
    """Merge CRM values into the user three ways; never queues a push of what the CRM sent.

    News (a webhook) is taken field by field only if newer than what we hold, so events that arrive
    out of order converge. A record read from the CRM is taken whole. A value we sent ourselves and
    never heard back about is recognised as our own write, not mistaken for a person's change.
    The caller holds the user's row lock (users.lock), so `user` is the row as it is now.
    """
    times = user.crm_field_times()
    whole = _authoritative(user, change)
    fresh = [f for f in FIELDS if f in change.clean and (whole or times[f] is None or change.at > times[f])]
    # A whole record that lacks a field, or holds it in a form we refuse (HubSpot allows a contact without a
    # phone, say): ours is pushed back, so that both sides end equal instead of differing while "synced".
    # Marked lacking in the snapshot ("", which no valid value is); one marked already needs nothing new.
    known = user.snapshot() or {}
    lacking = [f for f in FIELDS if f not in change.clean and known.get(f) != ""] if whole else []
    if not fresh and not lacking:
        suspicious = any(change.clean[f] != getattr(user, f) and (times[f] or "") > now_iso() for f in change.clean)
        return Applied(user, None, suspicious=suspicious)
    clean = {f: change.clean[f] for f in fresh}
    intents = user.intents()
    own = {f: clean[f] for f in fresh if change.raw[f] in intents.get(f, ()) or clean[f] in intents.get(f, ())}
    result = merge({**(user.snapshot() or {}), **own}, user.contact(), clean)
    # A value the CRM holds in a form we normalise differently is pushed back in ours, so both sides agree.
    snapshot = {**result.snapshot, **{f: change.raw[f] for f in fresh}, **{f: "" for f in lacking}}
    needs_push = any(result.local[f] != snapshot.get(f) for f in FIELDS)
    now = now_iso()
    new_times = {f: change.at if f in fresh else times[f] for f in FIELDS}
    params = {
        **{f"l_{f}": result.local[f] for f in FIELDS},
        **{f"s_{f}": snapshot.get(f) for f in FIELDS},
        **{f"t_{f}": new_times[f] for f in FIELDS},
        "crm_updated_at": change.at if whole else max(change.at, user.crm_updated_at or ""),
        "news_at": now,
        # Still pushing (queue_push=False: the push under way carries it) keeps the status the push sets.
        "status": "synced" if not needs_push else "pending" if queue_push else "",
        "touched": now if result.changed else user.updated_at,
        "id": user.id,
    }
    try:  # the caller's transaction (or savepoint) ends with this error: no savepoint of our own needed
        row = await conn.fetchrow(*named(_APPLY, params))
    except UniqueViolation:
        raise DuplicateEmail("The CRM's new email belongs to another local user.") from None
    if result.conflicts:
        await conn.executemany(
            "INSERT INTO conflicts (user_id, field, local_value, crm_value, base_value, origin, resolved_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [(user.id, c.field, c.local, c.crm, c.base, origin, now) for c in result.conflicts],
        )
    # Local-only changes the CRM has not seen yet still need their push; the CRM's own never do.
    job_id = await jobs.upsert(conn, jobs.USER_PUSH, user.id, now) if needs_push and queue_push else None
    return Applied(User.from_row(row), result, job_id)


_APPLY = (
    "UPDATE users SET name = :l_name, email = :l_email, phone = :l_phone, synced_name = :s_name,"
    " synced_email = :s_email, synced_phone = :s_phone, crm_name_at = :t_name, crm_email_at = :t_email,"
    " crm_phone_at = :t_phone, crm_updated_at = :crm_updated_at, crm_news_at = :news_at, updated_at = :touched,"
    # Values just taken from the CRM: this is a sync, whichever way the data went.
    " last_synced_at = :news_at,"
    " sync_status = CASE WHEN :status = '' THEN sync_status ELSE :status END,"
    " last_error = CASE WHEN :status = 'synced' THEN NULL ELSE last_error END,"
    " next_retry_at = CASE WHEN :status = 'synced' THEN NULL ELSE next_retry_at END"
    " WHERE id = :id RETURNING *"
)
