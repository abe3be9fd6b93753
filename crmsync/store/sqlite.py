"""The embedded engine: one SQLite file in WAL mode, one writer connection behind a lock, one reader."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import aiosqlite

from .database import Connection, Database, Row
from .dialect import for_sqlite
from .errors import ConstraintViolation, StorageUnavailable, StoreError, UniqueViolation
from .migrations import sqlite as migrations

logger = logging.getLogger(__name__)

# WAL lets readers run beside the single writer. synchronous=FULL fsyncs the WAL on every commit, so a
# 2xx means the row survives power loss too, not just a killed process; the cost is measured in bench.py.
_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
)
# Turning a new file into WAL takes an exclusive lock and SQLite answers "locked" at once, without its busy
# handler, while another connection (another instance starting) holds the file; WAL then sticks to the file.
_WAL_DEADLINE = 10.0
_UNIQUE = re.compile(r"UNIQUE constraint failed: (\w+\.\w+)")
# SQLite primary result codes that mean the storage itself cannot take writes.
_STORAGE = {sqlite3.SQLITE_FULL: "the disk is full", sqlite3.SQLITE_IOERR: "the disk reported an I/O error"}


def translate(exc: BaseException) -> StoreError | None:
    """The store error a driver exception stands for, or None when it is none of ours to name."""
    if isinstance(exc, sqlite3.IntegrityError):
        match = _UNIQUE.search(str(exc))
        return UniqueViolation(match.group(1)) if match else ConstraintViolation(str(exc))
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _STORAGE:
            return StorageUnavailable(_STORAGE[code & 0xFF])
        text = str(exc).lower()
        if "database or disk is full" in text:
            return StorageUnavailable(_STORAGE[sqlite3.SQLITE_FULL])
        if "disk i/o error" in text:
            return StorageUnavailable(_STORAGE[sqlite3.SQLITE_IOERR])
        return StoreError(f"{type(exc).__name__}: {exc}")
    return None


def _raise(exc: BaseException) -> NoReturn:
    if (store_error := translate(exc)) is not None:
        raise store_error from exc
    raise exc


class SqliteConnection(Connection):
    """An aiosqlite connection speaking the store's statements; one trip to its thread per query."""

    engine = "sqlite"
    one_writer = True

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        super().__init__()
        self.pending: list[tuple[str, str]] = []  # notifications, sent when the transaction commits

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._conn.execute_fetchall(for_sqlite(sql), args))
        except sqlite3.Error as exc:
            _raise(exc)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            cursor = await self._conn.execute(for_sqlite(sql), args)
        except sqlite3.Error as exc:
            _raise(exc)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(for_sqlite(sql), rows)
        except sqlite3.Error as exc:
            _raise(exc)

    async def notify(self, channel: str, payload: str = "") -> None:
        if (channel, payload) not in self.pending:
            self.pending.append((channel, payload))


class SqliteDatabase(Database):
    """One writer connection guarded by a lock, and one reader connection that sees commits only.

    One process serves a SQLite file: notifications stay in the process.
    """

    engine = "sqlite"
    shared = False

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = SqliteConnection(writer)
        self._raw_writer = writer
        self._reader = SqliteConnection(reader)
        self._raw_reader = reader
        self._write_lock = asyncio.Lock()
        super().__init__()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        """Open both connections, apply pragmas and pending migrations."""
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        try:
            await migrations.apply(SqliteConnection(writer), writer)
            reader = await _connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader)

    async def close(self) -> None:
        await self.group_close()
        await self._raw_reader.close()
        await self._raw_writer.close()

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    @asynccontextmanager
    async def _begin(self, durable: bool) -> AsyncIterator[Connection]:
        async with self._write_lock:
            changes = self._raw_writer.total_changes
            self._writer.pending.clear()
            if not durable:  # the next durable commit's fsync covers this one's frames too
                await self._writer.execute("PRAGMA synchronous = OFF")
            try:
                await asyncio.shield(self._writer.execute("BEGIN IMMEDIATE"))
                yield self._writer
                await asyncio.shield(self._commit())
            except BaseException:
                # Also after a failed COMMIT: SQLite may keep that transaction open.
                await asyncio.shield(self._raw_writer.rollback())
                raise
            finally:
                if not durable:
                    await asyncio.shield(self._writer.execute("PRAGMA synchronous = FULL"))
            self.wrote = self._raw_writer.total_changes != changes
            for channel, payload in self._writer.pending:
                self._dispatch(channel, payload)

    async def _commit(self) -> None:
        try:
            await self._raw_writer.commit()
        except sqlite3.Error as exc:
            _raise(exc)

    async def notify(self, channel: str, payload: str = "") -> None:
        self._dispatch(channel, payload)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._reader.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._reader.fetchrow(sql, *args)


async def _connect(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: we issue BEGIN ourselves, so sqlite3 never opens a transaction behind our back.
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    # SQLite's lower() folds only A-Z; PostgreSQL's (and Python's) every letter: searches match alike.
    # Made first: SQLite cannot replace a function while a statement (a pragma's cursor) is open.
    await conn.create_function("lower", 1, _lower, deterministic=True)
    try:
        for pragma in _PRAGMAS:
            await conn.execute(pragma)
        await _use_wal(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _use_wal(conn: aiosqlite.Connection) -> None:
    """Put the file in WAL mode, waiting while other connections opening it at the same moment hold it."""
    deadline = asyncio.get_running_loop().time() + _WAL_DEADLINE
    pause = 0.005
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() + pause > deadline:
                raise
        async with conn.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        if row is not None and str(row[0]).lower() == "wal":
            return  # another connection switched the file
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value
