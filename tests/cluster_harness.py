"""Several crmsync processes on one PostgreSQL database with the real mock CRM: the cluster tests' harness.

The mock CRM runs in the test (its store, counters and in-flight intervals are read directly); each
replica is a real `python -m crmsync` (tests/app_process.py) that can be killed, frozen and restarted.
The mock delivers its webhooks to the replicas in turn, as a load balancer in front of them would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import attrs
import pytest
from aiohttp.test_utils import TestServer

from mock_crm import keys as mock_keys
from mock_crm.app import create_app as create_mock_app
from mock_crm.config import MockConfig

from .app_process import AppProcess, crmsync_env
from .conftest import PASSWORD, WEBHOOK_SECRET
from .polling import eventually

# Leases and heartbeats short enough that a dead or frozen replica's work moves on within seconds.
FAST = {
    "CRMSYNC_JOB_BACKOFF": "0.5, 1, 2",
    "CRMSYNC_JOB_LEASE": "5",
    "CRMSYNC_REPLICA_HEARTBEAT": "0.5",
    "CRMSYNC_REPLICA_DEAD_AFTER": "4",
}


class Cluster:
    """The mock CRM and N crmsync replicas sharing one database; replica i keeps its port across restarts."""

    def __init__(
        self, crm: TestServer, database_url: str, ports: list[int], workdir: Path, env: dict[str, str]
    ) -> None:
        self.crm = crm
        self.database_url = database_url
        self.ports = ports
        self.workdir = workdir
        self.env = env
        self.replicas: list[AppProcess] = []
        self.lives: list[list[AppProcess]] = [[] for _ in ports]  # every process replica i has been
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self.auth: dict[str, str] = {}
        self._numbers = itertools.count()

    @property
    def crm_app(self) -> Any:
        return self.crm.app

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    async def start(self, *indexes: int) -> None:
        """Start these replicas (all when none is named) and wait until each serves."""
        started = []
        for i in indexes or range(len(self.ports)):
            env = {**self.env, "CRMSYNC_PORT": str(self.ports[i])}
            process = AppProcess(self.ports[i], env, self.workdir, name=f"replica{i}-{len(self.lives[i])}")
            self.lives[i].append(await process.start())
            started.append(process)
        await asyncio.gather(*(process.serving(self.session, timeout=60) for process in started))

    def process(self, i: int) -> AppProcess:
        """Replica i's current process."""
        return self.lives[i][-1]

    async def kill(self, i: int) -> None:
        """kill -9 replica i and reap it."""
        process = self.process(i)
        assert process.proc is not None
        process.proc.kill()
        await process.proc.wait()

    def freeze(self, i: int) -> None:
        """SIGSTOP: the process keeps its sockets and leases but does nothing (a long GC pause, a partition)."""
        proc = self.process(i).proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)

    def thaw(self, i: int) -> None:
        proc = self.process(i).proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)

    async def close(self) -> None:
        """Stop every replica still running (SIGCONT first, so a frozen one can stop), then the session."""
        for lives in self.lives:
            for process in lives:
                if process.proc is not None and process.proc.returncode is None:
                    os.kill(process.proc.pid, signal.SIGCONT)
                    await process.stop()
        await self.session.close()

    def log(self, i: int, event: str | None = None) -> list[dict[str, Any]]:
        """Replica i's JSON log lines over all its lives (only the named event, when given)."""
        lines = []
        for process in self.lives[i]:
            for line in process.stderr().splitlines():
                if line.startswith("{"):
                    record = json.loads(line)
                    if event is None or record.get("event") == event:
                        lines.append(record)
        return lines

    async def sign_up(self, i: int = 0) -> dict[str, str]:
        """An account (made on replica i, valid on all: the database is shared); kept as self.auth."""
        body = {"email": "owner@example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
        status, answer = await self.call(i, "POST", "/accounts", json=body, auth=False)
        assert status == 201, answer
        self.auth = {"Authorization": f"Bearer {answer['auth_token']}"}
        return self.auth

    async def call(self, i: int, method: str, path: str, auth: bool = True, **kwargs: Any) -> tuple[int, Any]:
        """One request to replica i; (status, JSON body)."""
        headers = {**(self.auth if auth else {}), **kwargs.pop("headers", {})}
        async with self.session.request(method, self.url(i) + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def create_users(self, count: int, replicas: Callable[[], list[int]], concurrency: int = 16) -> list[str]:
        """Create users round-robin over the replicas replicas() names at each moment, as a load balancer
        would; a request whose replica went away is sent to the next one. Returns the emails."""
        emails = [f"user{next(self._numbers):05d}@example.com" for _ in range(count)]
        turn = itertools.count()
        pending = iter(emails)

        async def create(email: str) -> None:
            body = {"name": f"User {email[4:9]}", "email": email, "phone": "555-0100"}
            cut = False  # a replica died with the request: it may have kept it, then the next try says so
            for _ in range(20):
                live = replicas()
                i = live[next(turn) % len(live)]
                try:
                    status, answer = await self.call(i, "POST", "/users", json=body)
                except aiohttp.ClientError:
                    cut = True
                    continue
                if status == 201 or (cut and answer.get("error") == "duplicate_email"):
                    return
                assert status == 503, answer  # only a replica that cannot take it now may refuse
            raise AssertionError(f"no replica took {email}")

        async def worker() -> None:
            for email in pending:
                await create(email)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return emails

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Read the shared database directly, as a person checking on it would."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def sync_states(self) -> Counter[str]:
        """How many users are in each sync state."""
        rows = await self.query("SELECT sync_status, COUNT(*) FROM users WHERE deleted_at IS NULL GROUP BY 1")
        return Counter({row[0]: row[1] for row in rows})

    def crm_emails(self) -> Counter[str]:
        """How many CRM records carry each email."""
        return Counter(record.email for record in self.crm_app[mock_keys.store].users.values())

    def overlaps(self) -> dict[str, list[tuple[float, float]]]:
        """Idempotency keys pushed by two senders at once (their requests' in-flight intervals overlapped)."""
        return self.crm_app[mock_keys.inflight].overlaps()

    async def wait_all_synced(self, count: int, timeout: float) -> None:
        async def done() -> bool:
            return (await self.sync_states())["synced"] == count

        try:
            await eventually(done, timeout, interval=0.5)
        except AssertionError:
            raise AssertionError(f"not all {count} users synced: {dict(await self.sync_states())}") from None

    async def live_replicas(self, i: int = 0) -> list[dict[str, Any]]:
        """GET /cluster on replica i."""
        status, body = await self.call(i, "GET", "/cluster")
        assert status == 200, body
        return list(body["replicas"])


MakeCluster = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def make_cluster(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    pg_database_url: str,
    unused_tcp_port_factory: Callable[[], int],
    mock_config: MockConfig,
    tmp_path: Path,
) -> AsyncIterator[MakeCluster]:
    """Build (and start) a cluster: make_cluster(replicas=3, crm={MockConfig overrides}, **CRMSYNC_* settings)."""
    made: list[Cluster] = []

    async def build(replicas: int = 3, crm: dict[str, Any] | None = None, start: bool = True, **env: str) -> Cluster:
        ports = [unused_tcp_port_factory() for _ in range(replicas)]
        hooks = " ".join(f"http://127.0.0.1:{port}/webhook" for port in ports)
        faults = dict(crm or {})
        if "rate_limit" in faults:  # the burst the mock run alone derives from the rate (evolve keeps the old one)
            faults.setdefault("rate_burst", max(1, math.ceil(faults["rate_limit"])))
        mock = attrs.evolve(
            mock_config, webhook_url=hooks, webhook_secret=WEBHOOK_SECRET, webhook_backoff=0.05, **faults
        )
        server = await aiohttp_server(create_mock_app(mock))
        settings = crmsync_env(
            CRMSYNC_DATABASE_URL=pg_database_url,
            CRMSYNC_CRM_URL=str(server.make_url("")).rstrip("/"),
            CRMSYNC_LOG_LEVEL="INFO",
            **{**FAST, **env},
        )
        cluster = Cluster(server, pg_database_url, ports, tmp_path, settings)
        made.append(cluster)
        if start:
            await cluster.start()
        return cluster

    yield build
    for cluster in made:
        await cluster.close()
