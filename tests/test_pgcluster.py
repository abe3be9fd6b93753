"""The PostgreSQL test infrastructure itself: a throwaway cluster from the installed binaries, a database per test."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from pathlib import Path

import asyncpg
import pytest
from yarl import URL

from scripts.pgcluster import PgCluster, PgUnavailable, find_bindir, port_free

from .pg_fixtures import create_database, drop_database, scratch_dir, unavailable

ROOT = Path(__file__).resolve().parent.parent


async def cli(*args: str) -> tuple[int, str]:
    """Run scripts/pgcluster.py; return its exit status and stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "pgcluster.py"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert not err or proc.returncode, err.decode()
    return proc.returncode or 0, out.decode().strip()


async def fetch(url: str, query: str, *args: object) -> object:
    """One value from one query on a new connection."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_a_throwaway_cluster_starts_from_the_installed_binaries_restarts_and_stops() -> None:
    # Started here even when CRMSYNC_TEST_DATABASE_URL names a server: this is the fallback a fresh machine uses.
    try:
        find_bindir()
    except PgUnavailable as exc:
        unavailable(str(exc))
    datadir = scratch_dir()
    cluster = PgCluster(datadir)
    try:
        url = await asyncio.to_thread(cluster.start)
        assert URL(url).host == "127.0.0.1" and URL(url).user == "postgres"
        assert await fetch(url, "SELECT 1") == 1
        assert await fetch(url, "SHOW fsync") == "off"  # a test server trades durability for speed
        assert cluster.is_running() and await asyncio.to_thread(cluster.start) == url  # start again: a no-op
        await asyncio.to_thread(cluster.stop)
        assert not cluster.is_running()
        assert port_free(cluster.port)

        # The same directory again, from the command line and durable (as the benchmark wants it): the
        # cluster is reused on its last port, and stop waits until the server is gone.
        assert await cli("start", str(datadir), "--durable") == (0, url)
        assert await fetch(url, "SHOW fsync") == "on"
        assert await fetch(url, "SHOW synchronous_commit") == "on"
        assert await cli("url", str(datadir)) == (0, url)
        assert await cli("stop", str(datadir)) == (0, "")
        assert port_free(cluster.port)
        assert (await cli("url", str(datadir)))[0] == 1
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(cluster.stop)
        shutil.rmtree(datadir, ignore_errors=True)


DATABASES_SEEN: list[str] = []


@pytest.mark.parametrize("turn", [1, 2])
async def test_each_test_gets_a_fresh_empty_database_dropped_afterwards(pg_database_url: str, turn: int) -> None:
    conn = await asyncpg.connect(pg_database_url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        # Empty: in particular, the table the previous turn created is not here.
        assert await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'") == []
        await conn.execute("CREATE TABLE left_behind (id integer PRIMARY KEY)")
        if DATABASES_SEEN:
            previous = DATABASES_SEEN[-1]
            assert name != previous
            assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", previous) == 0
        DATABASES_SEEN.append(name)
    finally:
        await conn.close()


async def test_a_database_is_dropped_even_while_connections_to_it_are_open(pg_server_url: str) -> None:
    url = await create_database(pg_server_url)
    name = URL(url).path.lstrip("/")
    lingering = await asyncpg.connect(url)  # as a pool an app did not close would be
    try:
        await asyncio.wait_for(drop_database(pg_server_url, name), timeout=10)
        assert await fetch(pg_server_url, "SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await lingering.close()
