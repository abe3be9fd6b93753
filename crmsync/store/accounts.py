"""Queries on the accounts table."""

from __future__ import annotations

import sqlite3
import uuid

import attrs

from ..db import Database, fetch_one
from ..errors import Conflict, DuplicateEmail
from ..timeutil import now_iso


@attrs.frozen
class Account:
    """A person who signs in to the API."""

    id: str
    email: str
    password_hash: str = attrs.field(repr=False)
    created_at: str


async def create(db: Database, email: str, password_hash: str) -> Account:
    """Insert an account; raise Conflict when the email is taken."""
    account = Account(id=str(uuid.uuid4()), email=email, password_hash=password_hash, created_at=now_iso())
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO accounts (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (account.id, account.email, account.password_hash, account.created_at),
            )
    except sqlite3.IntegrityError:
        raise DuplicateEmail("An account with this email already exists.") from None
    return account


async def by_email(db: Database, email: str) -> Account | None:
    """Find an account by its normalised email."""
    row = await fetch_one(db.reader, "SELECT * FROM accounts WHERE email = ?", (email,))
    return Account(**dict(row)) if row else None


async def exists(db: Database, account_id: str) -> bool:
    """True when the account exists."""
    return await fetch_one(db.reader, "SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is not None


async def delete(db: Database, account_id: str) -> bool:
    """Remove an account that owns no meetings; True when there was one to remove."""
    try:
        async with db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
    except sqlite3.IntegrityError:
        raise Conflict("The account still owns meetings.") from None
    return cursor.rowcount > 0
