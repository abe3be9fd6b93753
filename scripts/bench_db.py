"""The benchmark's databases: fresh crmsync databases on SQLite files or on a throwaway PostgreSQL cluster.

Each engine gives every scenario a fresh database with crmsync's schema (a copy of a template that crmsync
migrated once), writes pending users into it through crmsync's own store (crmsync.store.creates, the
function POST /users commits through: the users and their queued user_push jobs, in one transaction,
while crmsync is stopped), and reads it with SQL in the
store's spelling ($1, $2, ...), so that the harness asks both engines the same questions.

The PostgreSQL cluster is durable (fsync, synchronous_commit and full_page_writes on) and lives on disk
under the temporary directory, not on a tmpfs: a benchmark of real writes pays for real flushes.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg

from crmsync.store.creates import insert_users
from crmsync.store.dialect import for_sqlite
from crmsync.store.engines import open_database, parse_database_url
from scripts.pgcluster import PgCluster

TEMPLATE = "crmsync_template"
CHUNK = 500  # users per insert_users call: the store lists the new ids in one IN (...)


async def insert_pending(url: str, count: int, tag: str) -> None:
    """Write count pending users with their queued push jobs through crmsync's own store (the function
    POST /users commits through), in one transaction, while crmsync is stopped."""
    db = await open_database(parse_database_url(url), pool_size=1)
    try:
        async with db.transaction() as conn:
            for start in range(0, count, CHUNK):
                batch = [
                    {"name": f"Pending User {i}", "email": f"pending-{tag}-{i}@example.com", "phone": f"+1 555 {i:07d}"}
                    for i in range(start, min(start + CHUNK, count))
                ]  # fmt: skip
                for outcome in await insert_users(conn, batch):
                    if isinstance(outcome, Exception):
                        raise outcome
                if conn.engine == "postgres" and start < 5 * CHUNK:
                    # Statistics while the tables are small: asyncpg's prepared lookup of the new jobs' ids
                    # goes to a generic plan on its sixth run, and one made for empty tables scans them all
                    # (20,000 users took 12 s instead of 1.5). A live server's autovacuum does this itself.
                    await conn.execute("ANALYZE users, sync_jobs")
    finally:
        await db.close()


class Reader(abc.ABC):
    """Read-only queries on one database, in the store's spelling; rows as tuples."""

    @abc.abstractmethod
    def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """All rows of a query."""

    def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row."""
        rows = self.fetch(sql, *args)
        return rows[0][0] if rows else None

    @abc.abstractmethod
    def close(self) -> None:
        """Let go of the connection."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteReader(Reader):
    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(for_sqlite(sql), args).fetchall()]

    def close(self) -> None:
        self._conn.close()


class PostgresReader(Reader):
    def __init__(self, loop: asyncio.AbstractEventLoop, url: str) -> None:
        self._loop = loop
        self._conn: asyncpg.Connection = loop.run_until_complete(asyncpg.connect(url))

    def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._loop.run_until_complete(self._conn.fetch(sql, *args))]

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())


class BenchDatabase(abc.ABC):
    """Where one engine's scenarios keep their data; migrate(url) starts and stops crmsync on a database."""

    engine: str
    title: str

    def __init__(self, migrate: Callable[[str], None]) -> None:
        self._migrate = migrate
        self._template: str | None = None

    def fresh(self, label: str) -> str:
        """The URL of a new database with crmsync's schema, for one scenario."""
        if self._template is None:
            self._template = self._make_template()
        return self._copy_template(label)

    @abc.abstractmethod
    def _make_template(self) -> str: ...

    @abc.abstractmethod
    def _copy_template(self, label: str) -> str: ...

    def empty(self, label: str) -> str:
        """The URL of a new, empty database (for a reference app that makes its own table)."""
        raise NotImplementedError(f"{self.title} has no empty databases here")

    def insert_pending(self, url: str, count: int, tag: str) -> float:
        """Write count pending users and their jobs (crmsync stopped); returns the seconds it took."""
        started = time.monotonic()
        self._run(insert_pending(url, count, tag))
        self._analyze(url)
        return time.monotonic() - started

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run(work)

    def _analyze(self, url: str) -> None:  # noqa: B027 (SQLite plans without statistics)
        """Statistics after a bulk load, as autovacuum soon would gather them."""

    @abc.abstractmethod
    def reader(self, url: str) -> Reader:
        """A read-only connection to the database."""

    def server_pid(self) -> int | None:
        """The database server's main process, for CPU accounting; None for an embedded engine."""
        return None

    def describe(self) -> dict[str, Any]:
        """What the figures ran on."""
        return {"engine": self.engine}

    def close(self) -> None:  # noqa: B027 (an embedded engine starts nothing)
        """Stop and remove whatever the engine started."""


class SqliteBench(BenchDatabase):
    """SQLite files in the work directory."""

    engine, title = "sqlite", "SQLite"

    def __init__(self, workdir: Path, migrate: Callable[[str], None]) -> None:
        super().__init__(migrate)
        self.workdir = workdir

    def _make_template(self) -> str:
        template = self.workdir / "template.db"
        self._migrate(f"sqlite:///{template}")
        return str(template)

    def _copy_template(self, label: str) -> str:
        db = self.workdir / f"{label}.db"
        for suffix in ("", "-wal"):  # crmsync is stopped: the file (and a WAL left behind) are consistent
            if Path(f"{self._template}{suffix}").exists():
                shutil.copyfile(f"{self._template}{suffix}", f"{db}{suffix}")
        return f"sqlite:///{db}"

    def reader(self, url: str) -> Reader:
        return SqliteReader(_path(url))

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine, "directory": str(self.workdir), "filesystem": filesystem(self.workdir)}


class PostgresBench(BenchDatabase):
    """A durable throwaway cluster on disk; each scenario gets a database copied from a migrated template."""

    engine, title = "postgres", "PostgreSQL"

    def __init__(self, migrate: Callable[[str], None], root: Path | None = None) -> None:
        super().__init__(migrate)
        # Under the temporary directory (on disk) unless told otherwise; the prefix lets the test suite's
        # clean-up (tests/pg_fixtures.py) stop the cluster should this process be killed before it does.
        parent = root or Path(tempfile.gettempdir())
        self.datadir = Path(tempfile.mkdtemp(prefix=f"crmsync-pg-{os.getpid()}-bench-", dir=parent))
        self.cluster = PgCluster(self.datadir, durable=True)
        self.loop = asyncio.new_event_loop()
        self._admin: asyncpg.Connection | None = None
        try:
            self.server_url = self.cluster.start()
            self._admin = self.loop.run_until_complete(asyncpg.connect(self.server_url))
        except BaseException:
            self.close()
            raise

    def url(self, name: str) -> str:
        return self.server_url.rsplit("/", 1)[0] + f"/{name}"

    def _make_template(self) -> str:
        self._sql(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
        self._migrate(self.url(TEMPLATE))
        return TEMPLATE

    def _copy_template(self, label: str) -> str:
        name = "bench_" + re.sub(r"\W", "_", label.lower())
        self._sql(f'DROP DATABASE IF EXISTS "{name}"')
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return self.url(name)

    def empty(self, label: str) -> str:
        name = "bench_" + re.sub(r"\W", "_", label.lower())
        self._sql(f'DROP DATABASE IF EXISTS "{name}"')
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        self.loop.run_until_complete(work)

    def _analyze(self, url: str) -> None:
        """The planner should not meet 100,000 rows it has no statistics for just because they came at once."""

        async def analyze() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("ANALYZE users, sync_jobs")
            finally:
                await conn.close()

        self.loop.run_until_complete(analyze())

    def reader(self, url: str) -> Reader:
        return PostgresReader(self.loop, url)

    def server_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        return None

    def describe(self) -> dict[str, Any]:
        settings = {}
        if self._admin is not None:
            names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
            rows = self.loop.run_until_complete(
                self._admin.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", list(names))
            )
            settings = {row["name"]: row["setting"] for row in rows}
            settings["shared_buffers"] = f"{int(settings.get('shared_buffers', 0)) * 8 // 1024} MB"  # 8 kB pages
        return {
            "engine": self.engine,
            "server": f"PostgreSQL {settings.pop('server_version', '?').split()[0]}",
            "datadir": str(self.datadir),
            "filesystem": filesystem(self.datadir),
            "settings": settings,
        }

    def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self._admin.close())
            self._admin = None
        try:
            self.cluster.stop()
        finally:
            self.loop.close()
            shutil.rmtree(self.datadir, ignore_errors=True)

    def _sql(self, statement: str) -> None:
        assert self._admin is not None
        self.loop.run_until_complete(self._admin.execute(statement))


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def filesystem(path: Path) -> str | None:
    """The type of the filesystem holding path (ext4, tmpfs, ...), from /proc/self/mounts; None elsewhere."""
    try:
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return None
    target = str(path.resolve())
    best = max(
        (m for m in mounts if len(m) > 2 and (target == m[1] or target.startswith(m[1].rstrip("/") + "/"))),
        key=lambda m: len(m[1]),
        default=None,
    )
    return best[2] if best else None
