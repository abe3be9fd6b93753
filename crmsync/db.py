"""The SQLite database: connections, pragmas, migrations and write transactions."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from .group_commit import GroupCommit
from .migrations import MIGRATIONS

logger = logging.getLogger(__name__)

# WAL lets readers run beside the single writer. synchronous=FULL fsyncs the WAL on every commit, so a
# 2xx means the row survives power loss too, not just a killed process; the cost is measured in bench.py.
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
)


class Database:
    """One writer connection guarded by a lock, and one reader connection that sees commits only."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.writer = writer
        self.reader = reader
        self._write_lock = asyncio.Lock()
        self.group = GroupCommit(self.transaction)

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
        return cls(writer, reader)

    async def close(self) -> None:
        """Commit grouped work still waiting, then close both connections."""
        await self.group.close()
        await self.reader.close()
        await self.writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a block as one write transaction: committed on success, rolled back on any error."""
        async with self._write_lock:
            await self.writer.execute("BEGIN IMMEDIATE")
            try:
                yield self.writer
            except BaseException:
                await asyncio.shield(self.writer.rollback())
                raise
            await asyncio.shield(self.writer.commit())


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
