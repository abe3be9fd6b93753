"""./run.sh for real: both apps start and stop together, and a failed start or a dead app is loud.

Each test runs a copy of run.sh in tmp_path beside links to the real packages and the running .venv,
so data/ and logs/ are made in tmp_path and nothing is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from .polling import eventually

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BANNER = "Ctrl-C stops both"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory that looks like the repository to run.sh; its data/ and logs/ land in tmp_path."""
    venv = Path(sys.prefix)
    built = (ROOT / "pyproject.toml").stat().st_mtime
    stamps = [venv / ".installed-base", venv / ".installed-test"]
    if sys.prefix == sys.base_prefix or not any(s.exists() and s.stat().st_mtime >= built for s in stamps):
        # run.sh would install into the venv from the copy: never from a test.
        reason = "needs the .venv that ./run.sh test installs"
        if os.environ.get("CI") == "true":
            pytest.fail(f"run.sh tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(ROOT / "run.sh", root / "run.sh")
    for name in ("crmsync", "mock_crm", "pyproject.toml"):
        (root / name).symlink_to(ROOT / name)
    (root / ".venv").symlink_to(venv)
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    """True when a listener could bind the port, as the apps do."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def running_in(directory: Path) -> dict[str, int]:
    """Live processes whose working directory is `directory` (what a run.sh there started), by name (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "cwd").readlink() == directory and alive(int(entry.name)):
                args = (entry / "cmdline").read_bytes().split(b"\0")
                name = {b"crmsync": "crmsync", b"mock_crm": "the mock CRM"}.get(args[2] if len(args) > 2 else b"")
                found[name or " ".join(a.decode(errors="replace") for a in args)] = int(entry.name)
    return found


class RunSh:
    """./run.sh as a subprocess in its own process group, its output in a file.

    Not a pipe: an app left running would hold a pipe open, and asyncio's wait() waits for that too.
    """

    def __init__(self, proc: asyncio.subprocess.Process, out: Path) -> None:
        self.proc = proc
        self.out = out

    @property
    def lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines()

    @property
    def output(self) -> str:
        return "\n".join(line for line in self.lines if not line.startswith("{"))  # without the apps' JSON logs

    async def announced(self) -> None:
        """Wait until run.sh says both apps are up."""
        await eventually(lambda: BANNER in self.output or self.proc.returncode is not None, 60)
        assert BANNER in self.output, self.output

    async def exit_code(self, timeout: float = 60) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)


@pytest.fixture
async def run_sh(checkout: Path, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunSh]]]:
    """Start ./run.sh with the given environment; whatever it leaves behind is stopped afterwards."""
    started: list[RunSh] = []

    async def start(**env: str) -> RunSh:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CRMSYNC_", "MOCK_CRM_"))}
        out = tmp_path / f"run-{len(started)}.out"
        with out.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                "./run.sh", cwd=checkout, env={**base, **env}, start_new_session=True, stdout=sink, stderr=sink
            )
        started.append(RunSh(proc, out))
        return started[-1]

    yield start
    for run in started:
        if run.proc.returncode is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            await run.proc.wait()
    for pid in running_in(checkout).values():
        os.kill(pid, signal.SIGKILL)


def ports() -> dict[str, str]:
    return {"CRMSYNC_PORT": str(free_port()), "MOCK_CRM_PORT": str(free_port())}


def all_stopped(checkout: Path, env: dict[str, str]) -> None:
    """run.sh left no process behind, and both ports are free again."""
    assert running_in(checkout) == {}
    assert port_free(int(env["CRMSYNC_PORT"])) and port_free(int(env["MOCK_CRM_PORT"]))


async def test_start_announces_both_and_ctrl_c_stops_both(
    run_sh: Callable[..., Awaitable[RunSh]], checkout: Path
) -> None:
    env = ports()
    run = await run_sh(**env)
    await run.announced()
    apps = {name: pid for name, pid in running_in(checkout).items() if pid != run.proc.pid}
    assert set(apps) == {"the mock CRM", "crmsync"}, apps
    for name, pid in apps.items():
        assert f"run.sh: {name} is up" in run.output and f"(pid {pid}," in run.output
    assert f"crmsync on http://127.0.0.1:{env['CRMSYNC_PORT']}, mock CRM on :{env['MOCK_CRM_PORT']}" in run.output
    ready = f"http://127.0.0.1:{env['CRMSYNC_PORT']}/readyz"
    async with aiohttp.ClientSession() as session, session.get(ready) as resp:
        assert resp.status == 200, await resp.text()  # crmsync found the mock CRM on its port: a token came
    # A terminal's Ctrl-C goes to the script's process group; the apps run in sessions of their own.
    os.killpg(run.proc.pid, signal.SIGINT)
    assert await run.exit_code() == 0, run.output
    assert "run.sh: stopped" in run.output
    all_stopped(checkout, env)
    assert (checkout / "data" / "dev.env").is_file() and (checkout / "logs" / "crmsync.log").is_file()


async def test_crmsync_crm_hubspot_runs_the_hubspot_fake_and_a_contact_syncs_both_ways(
    run_sh: Callable[..., Awaitable[RunSh]], checkout: Path
) -> None:
    env = {**ports(), "CRMSYNC_CRM": "hubspot"}
    run = await run_sh(**env)
    await run.announced()
    assert f"HubSpot fake on :{env['MOCK_CRM_PORT']}" in run.output
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{env['CRMSYNC_PORT']}/readyz") as resp,
    ):
        assert resp.status == 200, await resp.text()
    secrets = dict(line.split("=", 1) for line in (checkout / "data" / "dev.env").read_text().splitlines())
    base, fake = f"http://127.0.0.1:{env['CRMSYNC_PORT']}", f"http://127.0.0.1:{env['MOCK_CRM_PORT']}"
    as_app = {"Authorization": f"Bearer {secrets['HUBSPOT_FAKE_ACCESS_TOKEN']}"}
    password = "correct horse battery"
    async with aiohttp.ClientSession() as session:
        signup = {"email": "hs@example.com", "password": password, "password_confirmation": password}
        async with session.post(f"{base}/accounts", json=signup) as resp:
            auth = {"Authorization": f"Bearer {(await resp.json())['auth_token']}"}
        contact = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}
        async with session.post(f"{base}/users", json=contact, headers=auth) as resp:
            user_id = (await resp.json())["id"]

        async def user() -> dict[str, Any]:
            async with session.get(f"{base}/users/{user_id}", headers=auth) as resp:
                return await resp.json()

        async def synced() -> bool:
            return (await user())["sync_status"] == "synced"

        await eventually(synced, 15)
        crm_id = (await user())["crm_id"]
        async with session.patch(f"{fake}/_fake/contacts/{crm_id}", json={"properties": {"lastname": "King"}},
                                 headers=as_app) as resp:  # fmt: skip
            assert resp.status == 200  # a person in HubSpot; the fake's signed webhook batch follows

        async def renamed() -> bool:
            return (await user())["name"] == "Ada King"

        await eventually(renamed, 15)
    os.killpg(run.proc.pid, signal.SIGINT)
    assert await run.exit_code() == 0, run.output
    all_stopped(checkout, env)


async def healthy(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@pytest.mark.parametrize(("taken", "name"), [("CRMSYNC_PORT", "crmsync"), ("MOCK_CRM_PORT", "the mock CRM")])
async def test_a_port_in_use_fails_loudly_and_leaves_nothing_running(
    run_sh: Callable[..., Awaitable[RunSh]],
    checkout: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    taken: str,
    name: str,
) -> None:
    env = ports()
    # Another instance on the port, healthy: its /healthz must not pass for the app run.sh started.
    impostor = web.Application()
    impostor.router.add_get("/healthz", healthy)
    await aiohttp_server(impostor, port=int(env[taken]))
    run = await run_sh(**env)
    assert await run.exit_code() != 0, run.output
    assert BANNER not in run.output
    assert f"run.sh: {name} cannot start" in run.output and "already in use" in run.output and taken in run.output
    assert running_in(checkout) == {}
    assert port_free(int(env["MOCK_CRM_PORT" if taken == "CRMSYNC_PORT" else "CRMSYNC_PORT"]))


async def test_an_app_that_fails_to_start_is_named_and_the_other_is_stopped(
    run_sh: Callable[..., Awaitable[RunSh]], checkout: Path
) -> None:
    env = ports()
    run = await run_sh(**env, CRMSYNC_WORKERS="0")  # crmsync refuses the setting and exits 2
    assert await run.exit_code() != 0, run.output
    assert "run.sh: the mock CRM is up" in run.output  # it was running when crmsync failed
    assert "run.sh: crmsync failed to start (exit status 2)" in run.output and "logs/crmsync.log" in run.output
    assert "CRMSYNC_WORKERS" in run.output  # the app's own one-line reason is shown too
    all_stopped(checkout, env)


@pytest.mark.parametrize("victim", ["the mock CRM", "crmsync"])
async def test_when_one_app_dies_the_other_is_stopped_and_run_sh_fails(
    run_sh: Callable[..., Awaitable[RunSh]], checkout: Path, victim: str
) -> None:
    env = ports()
    run = await run_sh(**env)
    await run.announced()
    os.kill(running_in(checkout)[victim], signal.SIGKILL)
    assert await run.exit_code() != 0, run.output
    assert f"run.sh: {victim} stopped on its own (exit status 137)" in run.output
    all_stopped(checkout, env)
