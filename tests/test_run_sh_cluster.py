"""./run.sh cluster for real: a database, the mock CRM and N replicas start and stop together.

Like tests/test_run_sh.py, each test runs a copy of run.sh beside links to the real packages and the
running .venv. The checkout is in a directory of its own that the postgres user can reach (as root the
throwaway PostgreSQL under data/pg runs as that user).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from scripts.pgcluster import PgCluster, PgUnavailable, find_bindir

from .conftest import PASSWORD
from .pg_fixtures import unavailable
from .polling import eventually
from .test_run_sh import RunSh, alive, checkout, free_port, healthy, port_free  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BANNER = "Ctrl-C stops all"


@pytest.fixture
def cluster_checkout(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A directory that looks like the repository to run.sh (test_run_sh's checkout checks the venv first)."""
    request.getfixturevalue("checkout")
    root = Path(tempfile.mkdtemp(prefix="crmsync-run-cluster-"))
    root.chmod(0o755)
    shutil.copy2(ROOT / "run.sh", root / "run.sh")
    for name in ("crmsync", "mock_crm", "scripts", "pyproject.toml"):
        (root / name).symlink_to(ROOT / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    try:
        yield root
    finally:
        if (root / "data" / "pg").exists():
            PgCluster(root / "data" / "pg").stop()
        shutil.rmtree(root, ignore_errors=True)


def apps_in(directory: Path) -> list[tuple[str, int]]:
    """(module, pid) of the live python -m apps whose working directory is `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "cwd").readlink() != directory or not alive(int(entry.name)):
                continue
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(args) > 2 and args[1] == b"-m":
            found.append((args[2].decode(), int(entry.name)))
    return sorted(found)


@pytest.fixture
async def run_cluster(cluster_checkout: Path, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunSh]]]:
    """Start ./run.sh cluster with arguments and an environment; whatever it leaves behind is stopped afterwards."""
    started: list[RunSh] = []

    async def start(*args: str, **env: str) -> RunSh:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CRMSYNC_", "MOCK_CRM_"))}
        out = tmp_path / f"cluster-{len(started)}.out"
        with out.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                "./run.sh", "cluster", *args, cwd=cluster_checkout, env={**base, **env}, start_new_session=True,
                stdout=sink, stderr=sink,
            )  # fmt: skip
        started.append(RunSh(proc, out))
        return started[-1]

    yield start
    for run in started:
        if run.proc.returncode is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            await run.proc.wait()
    for _, pid in apps_in(cluster_checkout):
        os.kill(pid, signal.SIGKILL)


def cluster_ports(replicas: int) -> dict[str, str]:
    return {"CRMSYNC_PORTS": " ".join(str(free_port()) for _ in range(replicas)), "MOCK_CRM_PORT": str(free_port())}


def all_stopped(directory: Path, env: dict[str, str]) -> None:
    """run.sh left no app behind and every port is free again."""
    assert apps_in(directory) == []
    assert all(port_free(int(port)) for port in [*env["CRMSYNC_PORTS"].split(), env["MOCK_CRM_PORT"]])


async def announced(run: RunSh) -> None:
    await eventually(lambda: BANNER in run.output or run.proc.returncode is not None, 120)
    assert BANNER in run.output, run.output


async def test_cluster_runs_postgres_the_crm_and_n_replicas_that_see_each_other_and_ctrl_c_stops_all(
    run_cluster: Callable[..., Awaitable[RunSh]], cluster_checkout: Path
) -> None:
    try:
        find_bindir()
    except PgUnavailable as exc:
        unavailable(str(exc))
    env = cluster_ports(2)
    run = await run_cluster("2", **env)
    await announced(run)
    urls = [f"http://127.0.0.1:{port}" for port in env["CRMSYNC_PORTS"].split()]
    assert "run.sh: PostgreSQL is up in data/pg" in run.output
    assert f"2 crmsync replicas on {' '.join(urls)} (one PostgreSQL), mock CRM on :{env['MOCK_CRM_PORT']}" in run.output
    assert [module for module, _ in apps_in(cluster_checkout)] == ["crmsync", "crmsync", "mock_crm"]
    account = {"email": "ops@example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
    async with aiohttp.ClientSession() as session:
        names = []
        for url in urls:
            async with session.get(f"{url}/readyz") as resp:
                assert resp.status == 200, await resp.text()  # each found the mock CRM and the database
                names.append((await resp.json())["replica"])
        async with session.post(f"{urls[0]}/accounts", json=account) as resp:
            assert resp.status == 201, await resp.text()
            auth = {"Authorization": f"Bearer {(await resp.json())['auth_token']}"}
        async with session.get(f"{urls[1]}/cluster", headers=auth) as resp:  # the account is in the shared database
            body = await resp.json()
    assert body["database"] == "postgres" and sorted(r["id"] for r in body["replicas"]) == sorted(names)
    os.killpg(run.proc.pid, signal.SIGINT)
    assert await run.exit_code() == 0, run.output
    assert "run.sh: stopped" in run.output and "run.sh: stopped PostgreSQL in data/pg" in run.output
    all_stopped(cluster_checkout, env)
    assert not PgCluster(cluster_checkout / "data" / "pg").is_running()
    assert {path.name for path in (cluster_checkout / "logs").iterdir()} >= {
        "crmsync-1.log",
        "crmsync-2.log",
        "mock_crm.log",
    }


async def test_cluster_runs_against_the_hubspot_fake_too(
    run_cluster: Callable[..., Awaitable[RunSh]], cluster_checkout: Path
) -> None:
    """CRMSYNC_CRM=hubspot ./run.sh cluster 2: the fake spreads its webhook batches over both replicas."""
    try:
        find_bindir()
    except PgUnavailable as exc:
        unavailable(str(exc))
    env = {**cluster_ports(2), "CRMSYNC_CRM": "hubspot"}
    run = await run_cluster("2", **env)
    await announced(run)
    assert f"HubSpot fake on :{env['MOCK_CRM_PORT']}" in run.output
    urls = [f"http://127.0.0.1:{port}" for port in env["CRMSYNC_PORTS"].split()]
    secrets = dict(line.split("=", 1) for line in (cluster_checkout / "data" / "dev.env").read_text().splitlines())
    fake = {"Authorization": f"Bearer {secrets['HUBSPOT_FAKE_ACCESS_TOKEN']}"}
    account = {"email": "ops@example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{urls[0]}/accounts", json=account) as resp:
            auth = {"Authorization": f"Bearer {(await resp.json())['auth_token']}"}
        contact = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}
        async with session.post(f"{urls[1]}/users", json=contact, headers=auth) as resp:
            user_id = (await resp.json())["id"]

        async def user() -> dict[str, Any]:
            async with session.get(f"{urls[0]}/users/{user_id}", headers=auth) as resp:
                return dict(await resp.json())

        async def synced() -> bool:
            return (await user())["sync_status"] == "synced"

        await eventually(synced, 30)
        crm_id = (await user())["crm_id"]
        for last in ["King", "Byron"]:  # two batches: one to each replica in turn
            path = f"http://127.0.0.1:{env['MOCK_CRM_PORT']}/_fake/contacts/{crm_id}"
            async with session.patch(path, json={"properties": {"lastname": last}}, headers=fake) as resp:
                assert resp.status == 200

            async def renamed(last: str = last) -> bool:
                return (await user())["name"] == f"Ada {last}"

            await eventually(renamed, 30)
    os.killpg(run.proc.pid, signal.SIGINT)
    assert await run.exit_code() == 0, run.output
    all_stopped(cluster_checkout, env)


async def test_a_replica_that_cannot_start_stops_all_with_a_non_zero_exit(
    run_cluster: Callable[..., Awaitable[RunSh]],
    cluster_checkout: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    pg_database_url: str,
) -> None:
    env = cluster_ports(3)
    impostor = web.Application()
    impostor.router.add_get("/healthz", healthy)
    await aiohttp_server(impostor, port=int(env["CRMSYNC_PORTS"].split()[2]))
    run = await run_cluster(**env, CRMSYNC_DATABASE_URL=pg_database_url)  # the server given: no data/pg
    assert await run.exit_code() != 0, run.output
    assert "run.sh: crmsync replica 2 is up" in run.output  # running until replica 3 failed
    assert "run.sh: crmsync replica 3 cannot start" in run.output and "CRMSYNC_PORTS" in run.output
    assert BANNER not in run.output and "PostgreSQL" not in run.output
    assert apps_in(cluster_checkout) == [] and not (cluster_checkout / "data" / "pg").exists()


async def test_when_one_replica_dies_the_others_are_stopped_and_run_sh_fails(
    run_cluster: Callable[..., Awaitable[RunSh]], cluster_checkout: Path, pg_database_url: str
) -> None:
    env = cluster_ports(2)
    run = await run_cluster("2", **env, CRMSYNC_DATABASE_URL=pg_database_url)
    await announced(run)
    replicas = [pid for module, pid in apps_in(cluster_checkout) if module == "crmsync"]
    assert len(replicas) == 2
    os.kill(replicas[1], signal.SIGKILL)
    assert await run.exit_code() != 0, run.output
    assert "stopped on its own (exit status 137); stopping the others" in run.output
    all_stopped(cluster_checkout, env)


async def test_a_bad_replica_count_is_refused(run_cluster: Callable[..., Awaitable[RunSh]]) -> None:
    run = await run_cluster("zero")
    assert await run.exit_code() == 2
    assert "usage: ./run.sh cluster [N]" in run.output
