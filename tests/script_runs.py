"""Run one of scripts/ against a test backend, as a person would."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp.test_utils import TestClient

ROOT = Path(__file__).resolve().parent.parent


async def run_script(client: TestClient, auth: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """scripts/argv[0] with the backend's URL and the account's token in its environment: (exit status,
    stdout, stderr)."""
    env = {**os.environ, "CRMSYNC_URL": str(client.make_url("")).rstrip("/"),
           "CRMSYNC_TOKEN": auth["Authorization"].split()[1]}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / argv[0]), *argv[1:], env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, stdout.decode(), stderr.decode()
