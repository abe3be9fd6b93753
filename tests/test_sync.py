"""The sync engine end to end: real backend, real mock CRM, real HTTP, SQLite under tmp_path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from mock_crm import keys as mock_keys
from mock_crm.app import create_app as create_mock_app
from mock_crm.config import MockConfig

from .conftest import JOHN, crm_call, crm_records, eventually, get_user, set_faults, sign_up, wait_status


async def _create(client: TestClient, auth: dict[str, str], **fields: str) -> dict[str, Any]:
    resp = await client.post("/users", json={**JOHN, **fields}, headers=auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _history(client: TestClient, auth: dict[str, str], user_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/users/{user_id}/history", headers=auth)
    assert resp.status == 200
    return (await resp.json())["items"]


async def test_happy_path_the_crm_holds_what_we_hold(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await _create(backend, auth)
    synced = await wait_status(backend, auth, user["id"], "synced")
    assert synced["crm_id"] and synced["last_error"] is None and synced["last_synced_at"].endswith("Z")
    assert synced["sync_attempts"] == 1
    status, record = await crm_call(crm, "GET", f"/crm/users/{synced['crm_id']}")
    assert status == 200
    assert {k: record[k] for k in JOHN} == {k: synced[k] for k in JOHN}
    assert len(crm_records(crm_app)) == 1
    [attempt] = await _history(backend, auth, user["id"])
    assert attempt["outcome"] == "ok" and attempt["http_status"] == 201 and attempt["attempt"] == 1


async def test_many_workers_share_one_token(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    users = await asyncio.gather(*(_create(backend, auth, email=f"u{i}@example.com") for i in range(20)))
    for user in users:
        await wait_status(backend, auth, user["id"], "synced")
    assert crm_app[mock_keys.stats].tokens_issued == 1
    assert len(crm_records(crm_app)) == 20


async def test_an_expired_token_is_replaced(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config()))
    auth = await sign_up(client)
    first = await _create(client, auth, email="first@example.com")
    await wait_status(client, auth, first["id"], "synced")
    assert crm_app[mock_keys.stats].tokens_issued == 1
    # The CRM rotates its signing key: our cached token is now refused with 401, once.
    crm_app[mock_keys.tokens].key = b"rotated-signing-key-" * 4
    second = await _create(client, auth, email="second@example.com")
    await wait_status(client, auth, second["id"], "synced")
    assert crm_app[mock_keys.stats].tokens_issued == 2


async def test_a_short_lived_token_is_refreshed_before_it_expires(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    mock_config: MockConfig,
) -> None:
    short = await aiohttp_server(create_mock_app(attrs.evolve(mock_config, token_ttl=1)))
    config = make_config(crm_url=str(short.make_url("")).rstrip("/"))
    client = await aiohttp_client(create_app(config))
    auth = await sign_up(client)
    started = time.time()
    first = await _create(client, auth, email="first@example.com")
    await wait_status(client, auth, first["id"], "synced")
    # Wait, with a deadline, until the first token has certainly expired; then sync again.
    await eventually(lambda: time.time() > started + 1.2, timeout=5)
    second = await _create(client, auth, email="second@example.com")
    await wait_status(client, auth, second["id"], "synced")
    assert short.app[mock_keys.stats].tokens_issued == 2
    statuses = [a["http_status"] for a in await _history(client, auth, second["id"])]
    assert statuses == [201]  # refreshed ahead of expiry: no 401 round trip


async def test_a_5xx_is_retried_then_succeeds(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    await set_faults(crm, fail_next=2, fail_status=503)
    user = await _create(backend, auth)
    synced = await wait_status(backend, auth, user["id"], "synced")
    assert synced["sync_attempts"] == 3
    assert [a["http_status"] for a in await _history(backend, auth, user["id"])] == [201, 503, 503]
    assert len(crm_records(crm_app)) == 1


async def test_a_permanent_4xx_fails_at_once_with_a_readable_error(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    await set_faults(crm, fail_next=1, fail_status=400)
    user = await _create(backend, auth)
    failed = await wait_status(backend, auth, user["id"], "failed")
    assert failed["last_error"].startswith("The CRM rejected the contact")
    assert failed["next_retry_at"] is None and failed["sync_attempts"] == 1
    assert len(crm_records(crm_app)) == 0
    # A person re-queues it; the CRM accepts it this time.
    resp = await backend.post(f"/users/{user['id']}/sync", headers=auth)
    assert resp.status == 202
    synced = await wait_status(backend, auth, user["id"], "synced")
    assert synced["last_error"] is None and len(crm_records(crm_app)) == 1


async def test_retries_exhausted_leave_the_user_failed(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(job_retries=1, job_backoff=(0.05,))))
    auth = await sign_up(client)
    await set_faults(crm, failure_rate=1.0)
    user = await _create(client, auth)

    async def final_failure() -> dict[str, Any] | None:
        current = await get_user(client, auth, user["id"])
        done = current["sync_status"] == "failed" and current["next_retry_at"] is None
        return current if done and current["sync_attempts"] == 6 else None

    failed = await eventually(final_failure)
    assert failed["last_error"] == "The CRM could not be reached after 3 attempts (HTTP 503)."
    history = await _history(client, auth, user["id"])
    assert [a["attempt"] for a in history] == [6, 5, 4, 3, 2, 1]
    assert {a["http_status"] for a in history} == {503}
    assert len(crm_records(crm_app)) == 0


async def test_a_round_that_fails_is_retried_later_by_the_job(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await set_faults(crm, failure_rate=1.0)
    user = await _create(backend, auth)

    async def scheduled() -> dict[str, Any] | None:
        current = await get_user(backend, auth, user["id"])
        return current if current["sync_status"] == "failed" and current["next_retry_at"] else None

    failed = await eventually(scheduled)
    assert "could not be reached" in failed["last_error"]
    await set_faults(crm, failure_rate=0.0)
    synced = await wait_status(backend, auth, user["id"], "synced")
    assert synced["next_retry_at"] is None and synced["last_error"] is None


async def test_a_duplicate_in_the_crm_is_linked_not_failed(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    status, existing = await crm_call(crm, "POST", "/crm/users", json={**JOHN, "phone": "555-000-1111"})
    assert status == 201
    user = await _create(backend, auth)
    synced = await wait_status(backend, auth, user["id"], "synced")
    assert synced["crm_id"] == existing["crm_id"]
    assert synced["phone"] == "555-000-1111"  # the CRM is the source of truth
    assert len(crm_records(crm_app)) == 1


async def test_restart_recovers_pending_jobs(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    # The CRM is so slow that no push completes before the first process stops.
    await set_faults(crm, latency_ms=30_000)
    first = await aiohttp_client(create_app(make_config(shutdown_timeout=0.1)))
    auth = await sign_up(first)
    users = [await _create(first, auth, email=f"r{i}@example.com") for i in range(10)]
    await first.close()
    await set_faults(crm, latency_ms=0)

    second = await aiohttp_client(create_app(make_config()))
    for user in users:
        await wait_status(second, auth, user["id"], "synced")
    assert len(crm_records(crm_app)) == 10
    assert sorted(r.email for r in crm_records(crm_app).values()) == sorted(u["email"] for u in users)
