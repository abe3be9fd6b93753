"""The SQLite database: connections, pragmas, migrations and write transactions."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import aiosqlite

from .errors import StorageUnavailable
from .group_commit import GroupCommit
from .migrations import MIGRATIONS
from .storage_health import StorageHealth

logger = logging.getLogger(__name__)

# WAL lets readers run beside the single writer. synchronous=FULL fsyncs the WAL on every commit, so a
# 2xx means the row survives power loss too, not just a killed process; the cost is measured in bench.py.
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
)
# Driver errors that mean the storage itself cannot take writes, by SQLite primary result code.
_STORAGE_TROUBLE = {sqlite3.SQLITE_FULL: "the disk is full", sqlite3.SQLITE_IOERR: "the disk reported an I/O error"}


def storage_trouble(exc: BaseException) -> str | None:
    """Why a driver exception means the storage cannot take writes, or None for any other error.

    The one place that reads driver errors this way: a PostgreSQL driver adds its codes here
    (53100 disk_full, 58030 io_error).
    """
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _STORAGE_TROUBLE:
        return _STORAGE_TROUBLE[code & 0xFF]
    text = str(exc).lower()
    if "database or disk is full" in text:
        return _STORAGE_TROUBLE[sqlite3.SQLITE_FULL]
    if "disk i/o error" in text:
        return _STORAGE_TROUBLE[sqlite3.SQLITE_IOERR]
    return None


class Database:
    """One writer connection guarded by a lock, and one reader connection that sees commits only."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: Path) -> None:
        self.path = path
        self.writer = writer
        self.reader = reader
        self._write_lock = asyncio.Lock()
        # Account ids seen to exist; accounts are never deleted, so this never needs invalidating.
        self.known_accounts: set[str] = set()
        self.group = GroupCommit(self.transaction, self.storage_failure)
        self.storage = StorageHealth()

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open both connections, apply pragmas and pending migrations."""
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        try:
            await _migrate(writer)
            reader = await _connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader, path)

    async def close(self) -> None:
        """Commit grouped work still waiting, then close both connections."""
        await self.group.close()
        await self.reader.close()
        await self.writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a block as one write transaction: committed on success, rolled back on any error.

        Raises StorageUnavailable when the storage refused the write (disk full or failing).
        """
        async with self._write_lock:
            changes = self.writer.total_changes
            try:
                await asyncio.shield(self.writer.execute("BEGIN IMMEDIATE"))
                yield self.writer
                await asyncio.shield(self.writer.commit())
            except BaseException as exc:
                # Also after a failed COMMIT: SQLite may keep that transaction open.
                await asyncio.shield(self.writer.rollback())
                self._reraise(exc)
            if self.writer.total_changes != changes:
                self.storage.wrote()

    def storage_failure(self, exc: BaseException) -> StorageUnavailable | None:
        """The StorageUnavailable a driver error stands for (noting the episode), or None for other errors."""
        reason = storage_trouble(exc)
        return None if reason is None else self.storage.failed(reason, str(exc))

    async def check(self) -> None:
        """Raise unless the writer answers and the storage takes writes.

        After a write failed for lack of storage, a check makes one small real write of its own once
        no write has been tried for a while: a replica taken out of rotation still sees space come back.
        """
        probe = await self.storage.probe_due(self.path.parent)
        async with self.transaction() as conn:
            # Rewriting the row as it is is a real write that changes nothing.
            await conn.execute("UPDATE schema_version SET version = version" if probe else "SELECT 1")
        if self.storage.error is not None:
            raise StorageUnavailable(f"The last write failed: {self.storage.error}.")

    def _reraise(self, exc: BaseException) -> NoReturn:
        failure = self.storage_failure(exc)
        if failure is None:
            raise exc
        raise failure from exc


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> list[sqlite3.Row]:
    """Run a query and fetch its rows in one trip to the database thread."""
    return list(await conn.execute_fetchall(sql, params))


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> sqlite3.Row | None:
    """Run a query and fetch its first row (or None) in one trip to the database thread."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def _connect(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: we issue BEGIN ourselves, so sqlite3 never opens a transaction behind our back.
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in _PRAGMAS:
        await conn.execute(pragma)
    return conn


async def _migrate(conn: aiosqlite.Connection) -> None:
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await fetch_one(conn, "SELECT MAX(version) FROM schema_version")
        current = row[0] or 0
        for version, script in MIGRATIONS:
            if version > current:
                for statement in _statements(script):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                logger.info("schema_migrated", extra={"version": version})
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit behind our back)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s]
