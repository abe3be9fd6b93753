"""Merging a record the CRM answered with into the user, inside a push."""

from __future__ import annotations

from ..crm.errors import CrmRejected
from ..crm.types import CrmContact
from ..errors import DuplicateEmail
from ..store.crm_changes import apply_crm_record, record_change
from ..store.users import User
from .engine import SyncEngine


async def merge_record(engine: SyncEngine, user: User, record: CrmContact, read_since: str) -> User:
    """Merge the CRM's record into the user as it is now, not as it was when the push began."""
    try:
        async with engine.db.transaction() as conn:
            applied = await apply_crm_record(conn, user.id, record_change(record, read_since), "push", False)
    except DuplicateEmail:
        raise CrmRejected("The CRM gave this contact an email that another local user has.", 409) from None
    return applied.user if applied else user
