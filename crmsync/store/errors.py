"""What can go wrong in the store, said without naming a driver."""

from __future__ import annotations


class StoreError(Exception):
    """A database operation failed."""


class UniqueViolation(StoreError):
    """A write would duplicate a unique value; constraint names it as table.column (e.g. users.email)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(f"unique constraint failed: {constraint}")
        self.constraint = constraint


class ConstraintViolation(StoreError):
    """A write broke another integrity rule (a reference or a check)."""


class StorageUnavailable(StoreError):
    """The database cannot take this now (disk full, server down, too many connections); try again later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientConflict(StoreError):
    """Concurrent transactions collided (a deadlock or serialization failure); running it again succeeds."""
