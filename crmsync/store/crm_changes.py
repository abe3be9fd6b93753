"""Apply a change the CRM reports (webhook or reconcile) to the local record, in one transaction."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping

import aiosqlite
import attrs

from ..db import fetch_one
from ..errors import DuplicateEmail
from ..merge import FIELDS, Merge, merge
from ..timeutil import normalise_iso, now_iso
from ..validation import normalise_contact
from . import jobs
from .users import User

logger = logging.getLogger(__name__)


@attrs.frozen
class Applied:
    """What applying a CRM change did; merged is None when every field was already newer here."""

    user: User
    merged: Merge | None
    job_id: int | None = None

    @property
    def stale(self) -> bool:
        """True when the change was older than what we already knew for every field it named."""
        return self.merged is None


def crm_fields(record: Mapping[str, object]) -> dict[str, str]:
    """The contact fields of a CRM record that pass our validation, normalised like local input.

    A field the CRM holds in a form we would reject is left out (and logged), never stored.
    """
    present = {f: v for f in FIELDS if isinstance(v := record.get(f), str)}
    clean, rejected = normalise_contact(present)
    if rejected:
        logger.warning("crm_fields_rejected", extra={"crm_id": record.get("crm_id"), "fields": rejected})
    return clean


async def apply_crm_record(
    conn: aiosqlite.Connection, user_id: str, record: Mapping[str, object], origin: str, queue_push: bool = True
) -> Applied | None:
    """Merge a whole CRM record into the user as it is now (re-read inside the caller's transaction)."""
    row = await fetch_one(conn, "SELECT * FROM users WHERE id = ?", (user_id,))
    if row is None:
        return None
    changed_at = normalise_iso(record.get("updated_at"))
    return await apply_crm_change(conn, User.from_row(row), crm_fields(record), changed_at, origin, queue_push)


async def user_by_crm_id(conn: aiosqlite.Connection, crm_id: str) -> User | None:
    """The local user linked to a CRM record."""
    row = await fetch_one(conn, "SELECT * FROM users WHERE crm_id = ?", (crm_id,))
    return User.from_row(row) if row else None


async def apply_crm_change(
    conn: aiosqlite.Connection,
    user: User,
    fields: Mapping[str, str],
    changed_at: str,
    origin: str,
    queue_push: bool = True,
) -> Applied:
    """Merge CRM values stamped changed_at into the user; never queues a push of what the CRM sent.

    A field is taken only if this change is newer than the last CRM change we saw for it, so
    events that arrive out of order converge on the newest values.
    """
    times = user.crm_field_times()
    fresh = {f: v for f, v in fields.items() if f in FIELDS and (times[f] is None or changed_at > times[f])}
    if not fresh:
        return Applied(user, None)
    result = merge(user.snapshot(), user.contact(), fresh)
    now = now_iso()
    params = {
        **{f"l_{f}": result.local[f] for f in FIELDS},
        **{f"s_{f}": result.snapshot.get(f) for f in FIELDS},
        **{f"t_{f}": changed_at if f in fresh else times[f] for f in FIELDS},
        "crm_updated_at": max(changed_at, user.crm_updated_at or ""),
        "status": "pending" if result.needs_push else "synced",
        "touched": now if result.changed else user.updated_at,
        "id": user.id,
    }
    try:
        row = await fetch_one(
            conn,
            "UPDATE users SET name = :l_name, email = :l_email, phone = :l_phone, synced_name = :s_name,"
            " synced_email = :s_email, synced_phone = :s_phone, crm_name_at = :t_name, crm_email_at = :t_email,"
            " crm_phone_at = :t_phone, crm_updated_at = :crm_updated_at, updated_at = :touched,"
            " sync_status = CASE WHEN :status = 'synced' THEN 'synced' ELSE sync_status END,"
            " last_error = CASE WHEN :status = 'synced' THEN NULL ELSE last_error END,"
            " next_retry_at = CASE WHEN :status = 'synced' THEN NULL ELSE next_retry_at END"
            " WHERE id = :id RETURNING *",
            params,
        )
    except sqlite3.IntegrityError:
        raise DuplicateEmail("The CRM's new email belongs to another local user.") from None
    if result.conflicts:
        await conn.executemany(
            "INSERT INTO conflicts (user_id, field, local_value, crm_value, base_value, origin, resolved_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(user.id, c.field, c.local, c.crm, c.base, origin, now) for c in result.conflicts],
        )
    # Local-only changes the CRM has not seen yet still need their push; the CRM's own never do.
    queue = result.needs_push and queue_push
    job_id = await jobs.upsert(conn, jobs.USER_PUSH, user.id, now) if queue else None
    return Applied(User.from_row(row), result, job_id)
