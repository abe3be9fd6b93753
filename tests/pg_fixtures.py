"""PostgreSQL for the tests: one server per session, a fresh empty database per test.

The server is CRMSYNC_TEST_DATABASE_URL when set (a superuser URL; each test's database is made beside its
database), otherwise a throwaway cluster of our own, started from the installed server binaries and
stopped at the end of the session. Without binaries the PostgreSQL tests skip, except under CI=true,
where they fail so that CI cannot pass without running them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
from yarl import URL

from scripts.pgcluster import PgCluster, PgUnavailable

URL_ENV = "CRMSYNC_TEST_DATABASE_URL"
SCRATCH_PREFIX = "crmsync-pg-"
TMPFS = Path("/dev/shm")
TMPFS_ROOM = 2 << 30  # the cluster, its WAL and a few live test databases, with room to spare
CONNECT_TIMEOUT = 10.0


def unavailable(reason: str) -> NoReturn:
    """Skip a test that needs PostgreSQL, or fail it under CI=true, where nothing may skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def scratch_dir() -> Path:
    """A new directory for a throwaway cluster, named for this process so that a later run can reap it."""
    root = Path(tempfile.gettempdir())
    # CREATE DATABASE makes ~300 files: ~10 ms on a tmpfs, but ~200 ms on an ext4 /tmp whose inode
    # groups are full of files that earlier test runs deleted (ext4 skips recently freed inodes).
    with contextlib.suppress(OSError):
        if os.access(TMPFS, os.W_OK) and shutil.disk_usage(TMPFS).free >= TMPFS_ROOM:
            root = TMPFS
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root))


def reap_orphans() -> None:
    """Stop and remove the clusters of earlier test runs that died without stopping theirs (SIGKILL, a timeout)."""
    for root in {TMPFS, Path(tempfile.gettempdir())}:
        for path in root.glob(f"{SCRATCH_PREFIX}*"):
            owner = re.match(rf"{SCRATCH_PREFIX}(\d+)-", path.name)
            if owner is None or _alive(int(owner[1])):
                continue
            with contextlib.suppress(Exception):  # a half-made directory has nothing to stop
                PgCluster(path).stop()
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """True while a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def database_url(server_url: str, name: str) -> str:
    """The server's URL with another database (user, password and parameters kept)."""
    return str(URL(server_url).with_path(f"/{name}"))


async def _admin(server_url: str) -> asyncpg.Connection:
    """A connection for CREATE and DROP DATABASE; a configured server that cannot be reached fails the test."""
    try:
        return await asyncpg.connect(server_url, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        where = f"{URL(server_url).host}:{URL(server_url).port}"  # never the password
        pytest.fail(f"cannot connect to the test PostgreSQL server at {where}: {exc!r}", pytrace=False)


async def create_database(server_url: str, template: str = "template0") -> str:
    """Create an empty database with a unique name and return its URL."""
    # template0 cannot be connected to, so it is pristine and never "being accessed by other users".
    name = f"crmsync_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    conn = await _admin(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return database_url(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop a database, ending the connections still open to it (a pool a test did not close, a crashed app)."""
    conn = await _admin(server_url)
    try:
        if conn.get_server_version().major >= 13:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            ended = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1"
            await conn.execute(ended, name)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server for the session: CRMSYNC_TEST_DATABASE_URL, else a throwaway cluster of our own."""
    if url := os.environ.get(URL_ENV):
        yield url
        return
    reap_orphans()
    datadir = scratch_dir()
    cluster = PgCluster(datadir)
    try:
        url = cluster.start()
    except PgUnavailable as exc:
        shutil.rmtree(datadir, ignore_errors=True)
        unavailable(str(exc))
    try:
        yield url
    finally:
        cluster.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
async def pg_database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards with any connections left to it."""
    url = await create_database(pg_server_url)
    try:
        yield url
    finally:
        await drop_database(pg_server_url, URL(url).path.lstrip("/"))
