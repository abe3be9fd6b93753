"""crmsync as a real process (python -m crmsync), for what only a process shows: start-up, migrations, stderr."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import aiohttp

from .conftest import CLIENT_SECRET, JWT_SECRET, WEBHOOK_SECRET
from .polling import eventually

ROOT = Path(__file__).resolve().parent.parent
# python -m crmsync held at a gate once everything is imported, so that several processes start at once.
GATED = "import sys\nfrom crmsync.__main__ import main\nprint('ready', flush=True)\nsys.stdin.readline()\nsys.exit(main(sys.argv[1:]))"


def crmsync_env(**settings: str) -> dict[str, str]:
    """This environment without any CRMSYNC_* a person exported, plus the test secrets and these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMSYNC_", "MOCK_CRM_"))}
    env.update(
        CRMSYNC_CRM_CLIENT_SECRET=CLIENT_SECRET,
        CRMSYNC_JWT_SECRET=JWT_SECRET,
        CRMSYNC_WEBHOOK_SECRET=WEBHOOK_SECRET,
        CRMSYNC_RECONCILE_INTERVAL="0",
    )
    env.update(settings)
    return env


class AppProcess:
    """One python -m crmsync on 127.0.0.1:port, its stdout and stderr each in a file."""

    def __init__(self, port: int, env: dict[str, str], workdir: Path, name: str = "crmsync") -> None:
        self.port, self.env, self.workdir = port, env, workdir
        self.stdout_path, self.stderr_path = workdir / f"{name}.out", workdir / f"{name}.err"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, gated: bool = False) -> AppProcess:
        """Start the process (it may still be starting up when this returns); gated, it waits for open_gate()."""
        program = ["-c", GATED] if gated else ["-m", "crmsync"]
        stdin = asyncio.subprocess.PIPE if gated else asyncio.subprocess.DEVNULL
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *program, "--host", "127.0.0.1", "--port", str(self.port),
                cwd=self.workdir, env=self.env, stdin=stdin, stdout=out, stderr=err,
            )  # fmt: skip
        return self

    async def at_gate(self, timeout: float = 30.0) -> None:
        """Wait until a gated process has imported everything and waits to start."""
        await eventually(lambda: self.stdout().startswith("ready"), timeout, interval=0.01)

    async def open_gate(self) -> None:
        """Let a gated process start."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()

    async def exited(self, timeout: float = 60.0) -> int:
        """Wait for the process to end by itself; its exit code."""
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def serving(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        """Poll /healthz until it answers 200; fail at once if the process died."""

        async def check() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"crmsync exited with {self.proc.returncode}: {self.stderr()}")
            try:
                async with session.get(f"{self.url}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(check, timeout, interval=0.05)

    async def stop(self) -> int:
        """SIGTERM and wait for a graceful exit (SIGKILL after 15 s); the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
        return await self.proc.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")
