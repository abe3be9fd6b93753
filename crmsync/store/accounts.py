"""The accounts table: people who sign in to the API."""

from __future__ import annotations

import uuid

import attrs

from ..errors import Conflict, DuplicateEmail
from ..timeutil import now_iso
from .database import Database, Row
from .errors import ConstraintViolation, UniqueViolation


@attrs.frozen
class Account:
    """A person who signs in to the API."""

    id: str
    email: str
    password_hash: str = attrs.field(repr=False)
    created_at: str

    @classmethod
    def from_row(cls, row: Row) -> Account:
        """Build from an accounts row."""
        return cls(row["id"], row["email"], row["password_hash"], row["created_at"])


async def create(db: Database, email: str, password_hash: str) -> Account:
    """Insert an account; raise DuplicateEmail when the email is taken."""
    account = Account(id=str(uuid.uuid4()), email=email, password_hash=password_hash, created_at=now_iso())
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO accounts (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
                account.id, account.email, account.password_hash, account.created_at,
            )  # fmt: skip
    except UniqueViolation:
        raise DuplicateEmail("An account with this email already exists.") from None
    return account


async def by_email(db: Database, email: str) -> Account | None:
    """Find an account by its normalised email."""
    row = await db.fetchrow("SELECT * FROM accounts WHERE email = $1", email)
    return Account.from_row(row) if row else None


async def exists(db: Database, account_id: str) -> bool:
    """True when the account exists."""
    return await db.fetchrow("SELECT 1 FROM accounts WHERE id = $1", account_id) is not None


async def delete(db: Database, account_id: str) -> bool:
    """Remove an account that owns no meetings; True when there was one to remove."""
    try:
        async with db.transaction() as conn:
            deleted = await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
    except ConstraintViolation:
        raise Conflict("The account still owns meetings.") from None
    return deleted > 0
