"""The server engine: PostgreSQL through asyncpg's pool, shared safely by several crmsync processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg

from ..timeutil import isoformat, parse_iso
from .database import Connection, Database, Listener, Row
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
        super().__init__()

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

    async def notify(self, channel: str, payload: str = "") -> None:
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)


class PostgresDatabase(Database):
    """A pool of connections; every transaction takes one, reads borrow one per query.

    Several processes may share the database: notifications go through NOTIFY, and one dedicated
    connection per process LISTENs (reconnecting when it drops; callers poll as a fallback).
    """

    engine = "postgres"
    shared = True

    def __init__(self, pool: asyncpg.Pool, dsn: str, safe_url: str) -> None:
        self.pool = pool
        self._dsn = dsn
        self._safe_url = safe_url
        self._listener: asyncio.Task[None] | None = None
        self._listening: asyncpg.Connection | None = None
        # Group commits in flight at once: a third of the pool, leaving the rest to claims and reads.
        super().__init__(parallel_batches=max(1, min(4, pool.get_max_size() // 3)))

    @classmethod
    async def open(cls, dsn: str, safe_url: str, pool_size: int = 10) -> PostgresDatabase:
        """Connect a pool and apply pending migrations (once, whoever else starts at the same time)."""
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=pool_size, init=_setup, reset=_keep_session,
                server_settings={"timezone": "UTC"},
            )  # fmt: skip
        except _DRIVER_ERRORS as exc:
            _raise(exc)
        try:
            async with pool.acquire() as conn:
                await migrations.apply(PostgresConnection(conn), conn)
        except BaseException:
            await pool.close()
            raise
        database = cls(pool, dsn, safe_url)
        await database.measure_clock()
        return database

    async def close(self) -> None:
        await self.group_close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.pool.close()

    async def measure_clock(self) -> None:
        """Offset of the server's clock from ours, read at the midpoint of a round trip."""
        started = time.time()
        try:
            server = await self.pool.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
        except _DRIVER_ERRORS as exc:
            _raise(exc)
        self.clock_offset = float(server) - (started + time.time()) / 2

    def listen(self, channel: str, listener: Listener) -> None:
        new = channel not in self._listeners
        super().listen(channel, listener)  # a channel added before the connection is ready is added with it
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever(), name="pg-listen")
        elif new and self._listening is not None and not self._listening.is_closed():
            task = asyncio.create_task(self._listening.add_listener(channel, self._on_notification))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def notify(self, channel: str, payload: str = "") -> None:
        try:
            await self.pool.execute("SELECT pg_notify($1, $2)", channel, payload)
        except _DRIVER_ERRORS as exc:
            _raise(exc)

    def _on_notification(self, _: object, __: int, channel: str, payload: str) -> None:
        self._dispatch(channel, payload)

    async def _listen_forever(self) -> None:
        """Keep one connection LISTENing on every channel asked for; reconnect a second after it drops."""
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, server_settings={"timezone": "UTC"})
            except _DRIVER_ERRORS as exc:
                logger.warning("listen_connect_failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)
                continue
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _, closed=closed: closed.set())
            try:
                added: set[str] = set()
                while missing := set(self._listeners) - added:  # listen() may add channels meanwhile
                    for channel in missing:
                        await conn.add_listener(channel, self._on_notification)
                    added |= missing
                self._listening = conn
                logger.info("listening", extra={"channels": sorted(added)})
                self._listening_started()  # what was notified before now was missed: look again
                await closed.wait()
                logger.warning("listen_connection_lost")
            except _DRIVER_ERRORS as exc:
                logger.warning("listen_failed", extra={"error": type(exc).__name__})
            finally:
                self._listening = None
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
            await asyncio.sleep(1.0)

    def describe(self) -> str:
        return self._safe_url

    @asynccontextmanager
    async def _begin(self, durable: bool) -> AsyncIterator[Connection]:
        try:
            conn = await self.pool.acquire()
        except _DRIVER_ERRORS as exc:
            _raise(exc)
        try:
            transaction = conn.transaction()
            await _guard(transaction.start())
            if not durable:  # the commit does not wait for the WAL flush; a crash may lose it, harmlessly
                await _guard(conn.execute("SET LOCAL synchronous_commit TO OFF"))
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


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to the pool (asyncpg has already rolled back an open
    transaction): pooled connections never LISTEN, SET outside a transaction, or hold session locks.
    asyncpg's default reset would spend a round trip on every release, doubling the cost of a read."""


def _encode_time(value: str | datetime) -> tuple[int]:
    moment = parse_iso(value) if isinstance(value, str) else value
    delta = moment - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,)


def _decode_time(value: tuple[int]) -> str:
    return isoformat(_EPOCH + timedelta(microseconds=value[0]))
