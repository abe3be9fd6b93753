"""The server engine: PostgreSQL through asyncpg's pool, shared safely by several crmsync processes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg

from ..timeutil import isoformat, parse_iso
from .database import Connection, Database, Row
from .errors import ConstraintViolation, StorageUnavailable, StoreError, TransientConflict, UniqueViolation
from .migrations import postgres as migrations

logger = logging.getLogger(__name__)

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL counts timestamps in microseconds from here
# Unique constraints by name (named in the schema), as table.column: the same words SQLite uses.
_CONSTRAINTS = {
    "accounts_email_key": "accounts.email",
    "accounts_pkey": "accounts.id",
    "users_id_key": "users.id",
    "users_email_key": "users.email",
    "users_crm_id_key": "users.crm_id",
    "webhook_events_pkey": "webhook_events.id",
    "meetings_id_key": "meetings.id",
}
# SQLSTATE classes and codes that mean the server cannot take this now, whatever the statement.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")  # connection, resources (disk full), shutdown, system I/O
_CONFLICTS = ("40001", "40P01")  # serialization failure, deadlock detected


def translate(exc: BaseException) -> StoreError | None:
    """The store error a driver exception stands for, or None when it is none of ours to name."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        name = exc.constraint_name or ""
        return UniqueViolation(_CONSTRAINTS.get(name, name))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return ConstraintViolation(str(exc))
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state in _CONFLICTS:
            return TransientConflict(str(exc))
        if state[:2] in _UNAVAILABLE_CLASSES:
            return StorageUnavailable(f"the database server refused: {type(exc).__name__}")
        return StoreError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.InterfaceError | OSError | TimeoutError):
        return StorageUnavailable(f"the database server cannot be reached ({type(exc).__name__})")
    return None


def _raise(exc: BaseException) -> NoReturn:
    if (store_error := translate(exc)) is not None:
        raise store_error from exc
    raise exc


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _clean(args: Sequence[Any]) -> Sequence[Any]:
    """PostgreSQL text cannot hold NUL, which SQLite stores: it becomes U+FFFD (only in text we keep as
    evidence, such as a refused webhook's payload; our validation refuses NUL in contact fields)."""
    if any(isinstance(arg, str) and "\x00" in arg for arg in args):
        return [arg.replace("\x00", "\ufffd") if isinstance(arg, str) else arg for arg in args]
    return args


class PostgresConnection(Connection):
    """An asyncpg connection speaking the store's statements."""

    engine = "postgres"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._savepoints = itertools.count()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return await self._conn.fetch(sql, *_clean(args))
        except _DRIVER_ERRORS as exc:
            _raise(exc)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            return await self._conn.fetchrow(sql, *_clean(args))
        except _DRIVER_ERRORS as exc:
            _raise(exc)

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            status = await self._conn.execute(sql, *_clean(args))
        except _DRIVER_ERRORS as exc:
            _raise(exc)
        count = status.rsplit(" ", 1)[-1]  # e.g. "UPDATE 3", "INSERT 0 1"
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql, [_clean(row) for row in rows])
        except _DRIVER_ERRORS as exc:
            _raise(exc)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        name = f"sp{next(self._savepoints)}"
        await self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            await self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        await self.execute(f"RELEASE SAVEPOINT {name}")


class PostgresDatabase(Database):
    """A pool of connections; every transaction takes one, reads borrow one per query."""

    engine = "postgres"

    def __init__(self, pool: asyncpg.Pool, safe_url: str) -> None:
        self.pool = pool
        self._safe_url = safe_url
        super().__init__()

    @classmethod
    async def open(cls, dsn: str, safe_url: str, pool_size: int = 10) -> PostgresDatabase:
        """Connect a pool and apply pending migrations (once, whoever else starts at the same time)."""
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=pool_size, init=_setup, server_settings={"timezone": "UTC"}
            )
        except _DRIVER_ERRORS as exc:
            _raise(exc)
        try:
            async with pool.acquire() as conn:
                await migrations.apply(PostgresConnection(conn), conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, safe_url)

    async def close(self) -> None:
        await self.group_close()
        await self.pool.close()

    def describe(self) -> str:
        return self._safe_url

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[Connection]:
        try:
            conn = await self.pool.acquire()
        except _DRIVER_ERRORS as exc:
            _raise(exc)
        try:
            transaction = conn.transaction()
            await _guard(transaction.start())
            try:
                yield PostgresConnection(conn)
            except BaseException:
                await _guard(transaction.rollback())
                raise
            await _guard(transaction.commit())
            self.wrote = True
        finally:
            await self.pool.release(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return await self.pool.fetch(sql, *_clean(args))
        except _DRIVER_ERRORS as exc:
            _raise(exc)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            return await self.pool.fetchrow(sql, *_clean(args))
        except _DRIVER_ERRORS as exc:
            _raise(exc)


async def _guard(step: Any) -> None:
    try:
        await step
    except _DRIVER_ERRORS as exc:
        _raise(exc)


async def _setup(conn: asyncpg.Connection) -> None:
    """Timestamps travel as the store's ISO-8601 strings; the server stores and compares timestamptz."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_encode_time, decoder=_decode_time, format="tuple"
    )


def _encode_time(value: str | datetime) -> tuple[int]:
    moment = parse_iso(value) if isinstance(value, str) else value
    delta = moment - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,)


def _decode_time(value: tuple[int]) -> str:
    return isoformat(_EPOCH + timedelta(microseconds=value[0]))
