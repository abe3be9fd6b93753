"""A push refused because the CRM has the email on another contact that one of our own users is leaving."""

from __future__ import annotations

import logging
import secrets
from typing import NoReturn

from ..crm.attempts import Attempt
from ..crm.errors import CrmEmailTaken, CrmRejected, CrmStale, CrmUnavailable
from ..store import users
from ..store.users import User
from ..timeutil import now_iso
from .engine import SyncEngine
from .merging import merge_record

logger = logging.getLogger(__name__)

MAX_CHAIN = 10


class Blocked(Exception):
    """The push can only succeed after another user's push lands: retried after it, not failed for good."""

    def __init__(self, holder_id: str, message: str) -> None:
        super().__init__(message)
        self.holder_id = holder_id
        self.error = CrmUnavailable(message, 409)


async def clash(engine: SyncEngine, user: User, taken: CrmEmailTaken, email: str, tries: list[Attempt]) -> NoReturn:
    """Wait for the holder to move away (Blocked), or fail for good when it keeps the email.

    Users swapping emails form a cycle (each holds what the other wants in the CRM); the one with
    the lowest id steps aside to a temporary address first, so every such sequence converges.
    """
    holder = await users.by_crm_id(engine.db, taken.crm_id)
    if holder is None or holder.id == user.id or holder.email == email:
        raise CrmRejected(taken.message, 409)
    cycle = await _cycle(engine, user, holder)
    if cycle and user.id == min(cycle):
        await _step_aside(engine, user, tries)
    raise Blocked(holder.id, f"The CRM still has {email} on the contact of user {holder.id}, whose change goes first.")


async def _cycle(engine: SyncEngine, user: User, holder: User) -> list[str] | None:
    """The ids of users who each want the email the next one holds in the CRM, back to user; None if no cycle."""
    chain, current = [user.id], holder
    for _ in range(MAX_CHAIN):
        if current.id == user.id:
            return chain
        if current.id in chain or current.email == current.synced_email:
            return None  # a loop that does not include us, or a holder that is not moving
        chain.append(current.id)
        following = await users.by_crm_email(engine.db, current.email)
        if following is None:
            return None
        current = following
    return None


async def _step_aside(engine: SyncEngine, user: User, tries: list[Attempt]) -> None:
    """Move the user's CRM contact to a temporary address so the other side of the cycle can move."""
    assert user.crm_id is not None and user.synced_email is not None
    local, _, domain = user.synced_email.partition("@")
    temporary = f"{local[:40]}+swap-{secrets.token_hex(4)}@{domain}"
    await users.record_push_intent(engine.db, user.id, {"email": temporary})
    read_since = now_iso()
    try:
        version = user.crm_updated_at if engine.crm.capabilities.conditional_writes else None
        record = await engine.crm.update_contact(user.crm_id, {"email": temporary}, tries, version=version)
    except CrmStale:
        return  # the record changed meanwhile: the next run merges it first
    await merge_record(engine, user, record, read_since)
    logger.info("email_swap_stepped_aside", extra={"user_id": user.id, "crm_id": user.crm_id})
