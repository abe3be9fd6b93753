"""A contact deleted in the CRM, or created there: what becomes of it here, told to dashboards and logs."""

from __future__ import annotations

import logging

from ..events import user_event
from ..store import user_life, users
from ..store.crm_changes import CrmChange
from ..store.database import Connection
from ..store.users import User
from ..timeutil import now_iso
from .engine import SyncEngine

logger = logging.getLogger(__name__)


async def crm_lost(engine: SyncEngine, user_id: str, crm_id: str, seen_by: str, alert: bool = True) -> bool:
    """The CRM no longer has this user's record (a 404 on a push or a read, or a full reconcile); True when
    this handled it, False when the user was deleted or linked anew meanwhile. alert=False leaves the
    alert to the caller (one for a whole scan)."""
    mirror = engine.config.on_crm_delete == "delete"
    async with engine.db.transaction() as conn:
        user = await users.lock(conn, user_id)
        if user is None or user.crm_id != crm_id:
            return False
        row = await user_life.deleted_in_crm(conn, user, now_iso(), mirror)
    lost(engine, user, row, seen_by, alert)
    return True


def lost(engine: SyncEngine, user: User, row: User | None, seen_by: str, alert: bool = True) -> None:
    """Tell dashboards, the log and a person what became of a user whose CRM record is gone."""
    extra = {"user_id": user.id, "crm_id": user.crm_id, "seen_by": seen_by}
    if row is None:
        logger.info("user_deleted_in_crm", extra={**extra, "result": "deleted here too"})
        if engine.events:
            engine.events.publish({"type": "user_deleted", "user_id": user.id})
        return
    logger.error("user_deleted_in_crm", extra={**extra, "result": "unlinked; a person chooses"})
    if alert:
        engine.alerter.sync_failed("user", user.id, user.email, user_life.DELETED_IN_CRM)
    if engine.events:
        engine.events.publish(user_event(row))


async def appeared_in_crm(
    conn: Connection, crm_id: str, change: CrmChange, source: str, import_creates: bool
) -> tuple[str, User | None]:
    """A CRM record no local user is linked to: link the unlinked user with its email, or import it.

    Our own create's echo (source "api") is only ever linked, never imported: if nobody has its email,
    our create's answer links it. Returns the result word and the user ("waiting" when a user being
    deleted holds the email: nothing is done yet).
    """
    email = change.clean.get("email")
    if email is not None and (user := await user_life.unlinked_with_email(conn, email)) is not None:
        if user.deleting:  # never link what a person is deleting (its delete would take the CRM contact along)
            return "waiting", None  # the email is free once that delete is done: the CRM tells us again
        return "linked", await user_life.link(conn, user, crm_id, change, now_iso())
    if source != "crm" or not import_creates:
        return "ignored", None
    imported = await user_life.import_record(conn, crm_id, change, now_iso())
    return ("imported", imported) if imported is not None else ("ignored", None)
