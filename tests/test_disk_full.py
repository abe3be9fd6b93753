"""A full disk: writes answer 503 storage_unavailable with one WARNING, and work again once space is back."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.api.pages import OPENAPI
from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key
from crmsync.store import health as storage_health
from crmsync.timeutil import now_iso

from .conftest import JOHN, PASSWORD, crm_records, get_user, sign_up, sign_webhook, wait_status
from .fuzz_strategies import tracebacks
from .polling import eventually
from .test_health import tokens_hanging
from .test_openapi import assert_documented, load

SQLITE_MAX_PAGES = 4294967294
# A disk that fills is a file's trouble: these run on SQLite (PostgreSQL's server, down, is in test_health.py).
pytestmark = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)


@attrs.define
class SmallDisk:
    """A 3 MB tmpfs when this runs as root, else a plain directory where SQLite's max_page_count plays the disk."""

    path: Path
    tmpfs: bool

    async def fill(self, client: TestClient) -> None:
        """Leave no room for another write."""
        if not self.tmpfs:
            db = client.app[db_key]
            pages = await db.fetchval("PRAGMA page_count")
            async with db.transaction() as writer:  # the pragma holds for the writer's connection
                await writer.execute(f"PRAGMA max_page_count = {pages}")
            return
        fd = os.open(self.path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 16, 1 << 12, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)

    async def free(self, client: TestClient) -> None:
        """Make room again, as an operator would."""
        if self.tmpfs:
            (self.path / "filler").unlink()
        else:
            async with client.app[db_key].transaction() as writer:
                await writer.execute(f"PRAGMA max_page_count = {SQLITE_MAX_PAGES}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A tiny disk for the database; requested before the app, so it is unmounted after the app closed."""
    path = tmp_path / "disk"
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(path)]
    mounted = os.geteuid() == 0 and subprocess.run(mount, capture_output=True, check=False).returncode == 0
    try:
        yield SmallDisk(path, mounted)
    finally:
        if mounted and subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


async def until_refused(
    send: Callable[[int], Awaitable[aiohttp.ClientResponse]], accepted: list[str]
) -> tuple[int, aiohttp.ClientResponse]:
    """Send until the storage refuses (at once on a full tmpfs; SQLite's page limit leaves some slack)."""
    for attempt in range(1, 500):
        resp = await send(attempt)
        if resp.status == 503:
            return attempt, resp
        assert resp.status in (200, 201, 404), await resp.text()
        if resp.status == 201 and "/users/" in resp.headers.get("Location", ""):
            accepted.append((await resp.json())["id"])
    raise AssertionError("the storage never refused a write")


async def test_a_full_disk_answers_503_with_one_warning_and_recovers_without_a_restart(
    small_disk: SmallDisk,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # Pushes wait for a token meanwhile, so that only the requests below write while the disk is full.
    async with tokens_hanging(crm, 600_000):
        config = make_config(
            database_url=f"sqlite:///{small_disk.path / 'crmsync.db'}", crm_token_timeout=120.0, crm_timeout=120.0
        )
        client = await aiohttp_client(create_app(config))
        auth = await sign_up(client)
        accepted = []
        for n in range(5):
            resp = await client.post("/users", json={**JOHN, "email": f"before{n}@example.com"}, headers=auth)
            assert resp.status == 201
            accepted.append((await resp.json())["id"])
        edited = accepted[0]
        document = load(OPENAPI)

        await small_disk.fill(client)
        caplog.clear()
        sends: dict[str, tuple[str, Callable[[int], Awaitable[aiohttp.ClientResponse]]]] = {
            "POST /users": ("/users", lambda n: client.post("/users", json={**JOHN, "email": f"full{n}@example.com"},
                                                            headers=auth)),
            # Longer names each time: an edit that fits its page needs no new one, and the page limit would allow it.
            "PATCH /users/{user_id}": ("/users/{user_id}", lambda n: client.patch(
                f"/users/{accepted[n % len(accepted)]}", json={"name": f"{n} {'x' * 190}"}, headers=auth)),
            "POST /accounts": ("/accounts", lambda n: client.post("/accounts", json={
                "email": f"full{n}@example.com", "password": PASSWORD, "password_confirmation": PASSWORD})),
            "POST /webhook": ("/webhook", lambda n: _webhook(client, f"CRMunknown{n}")),
        }  # fmt: skip
        for name, (path, send) in sends.items():
            attempts, resp = await until_refused(send, accepted)
            assert attempts == 1 or not small_disk.tmpfs, name
            body = await resp.json()
            assert body["error"] == "storage_unavailable", (name, body)
            assert int(resp.headers["Retry-After"]) > 0
            assert_documented(document, name.split()[0], path, 503, body)

        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["status"] == "not_ready", body
        assert body["checks"]["database"] == "failed: The last write failed: the disk is full."
        assert body["details"]["database"]["failing_since"]
        assert_documented(document, "GET", "/readyz", 503, body)

        assert tracebacks(caplog.records) == []
        # One WARNING per episode, and an episode ends with the next write that succeeds: on the full tmpfs
        # that is one in all; the page limit lets a few writes through between the endpoints' refusals.
        warnings = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
        # (Webhooks let through are answered 404, each with its own warning.)
        warnings = [w for w in warnings if w[1] != "webhook_unknown_crm_id"]
        episodes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("storage_")]
        assert episodes == ["storage_unavailable", "storage_recovered"] * (len(episodes) // 2) + ["storage_unavailable"]
        assert warnings == [("WARNING", "storage_unavailable")] * (1 + len(episodes) // 2)
        assert len(episodes) == 1 or not small_disk.tmpfs

        await small_disk.free(client)
        resp = await client.post("/users", json={**JOHN, "email": "after@example.com"}, headers=auth)
        assert resp.status == 201, await resp.text()
        accepted.append((await resp.json())["id"])
        resp = await client.patch(f"/users/{edited}", json={"name": "Edited After"}, headers=auth)
        assert resp.status == 200
        await sign_up(client, "after@example.com")
        assert (await _webhook(client, "CRMunknown-after")).status == 404  # stored, and the sender told to retry

        async def database_ok() -> dict[str, Any] | None:
            resp = await client.get("/readyz")
            body = await resp.json()
            return body if resp.status == 200 and body["checks"]["database"] == "ok" else None

        await eventually(database_ok)
        assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("storage_")][-2:] == [
            "storage_unavailable", "storage_recovered"
        ]  # fmt: skip
    for user_id in accepted:
        await wait_status(client, auth, user_id, "synced", timeout=20)
    assert (await get_user(client, auth, edited))["name"] == "Edited After"
    assert len(crm_records(crm.app)) == len(accepted)


async def test_readiness_sees_space_come_back_with_no_write_from_outside(
    small_disk: SmallDisk,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not small_disk.tmpfs:
        pytest.skip("needs a real full disk (root, tmpfs): under SQLite's page limit an in-place write still fits")
    monkeypatch.setattr(storage_health, "WRITE_PROBE_AFTER", 0.0)  # no wait for a quiet spell before probing
    # No heartbeat meanwhile: its small writes may still fit the full disk and would end the episode first.
    config = make_config(database_url=f"sqlite:///{small_disk.path / 'crmsync.db'}", replica_heartbeat=3600.0)
    client = await aiohttp_client(create_app(config))
    await small_disk.fill(client)
    assert (await client.post("/accounts", json={"email": "a@example.com", "password": PASSWORD,
                                                 "password_confirmation": PASSWORD})).status == 503  # fmt: skip
    assert (await client.get("/readyz")).status == 503  # its own probe write fails too
    await small_disk.free(client)

    async def ready_again() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready_again)  # taken out of rotation, nobody writes: its own probe saw the space
    await sign_up(client, "a@example.com")


async def _webhook(client: TestClient, crm_id: str) -> aiohttp.ClientResponse:
    payload = {"crm_id": crm_id, "updated_fields": {"name": "Someone"}, "timestamp": now_iso()}
    body, headers = sign_webhook(payload)
    return await client.post("/webhook", data=body, headers=headers)
