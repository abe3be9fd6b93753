"""A backlog goes to the CRM in batch requests; items a batch rejects fall back to single calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from mock_crm import keys as mock_keys

from .conftest import JOHN, crm_call, crm_records, get_user, set_faults, sign_up, wait_status


async def _backlog(client: TestClient, auth: dict[str, str], crm: TestServer, count: int) -> list[str]:
    """Queue count users behind one slow create, so they are due together.

    The first create is held long enough for the others to be accepted even on a loaded machine (with
    300 ms, 31 creates on a busy machine sometimes outlasted it and the backlog went out in two batches).
    """
    await set_faults(crm, latency_ms=2_000)
    ids = []
    for i in range(count + 1):
        resp = await client.post("/users", json={**JOHN, "email": f"b{i}@example.com"}, headers=auth)
        ids.append((await resp.json())["id"])
    await set_faults(crm, latency_ms=0)
    return ids


async def test_a_backlog_is_created_in_batches(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(workers=1)))
    auth = await sign_up(client)
    ids = await _backlog(client, auth, crm, 30)
    for user_id in ids:
        user = await wait_status(client, auth, user_id, "synced")
        assert crm_records(crm_app)[user["crm_id"]].email == user["email"]
    stats = crm_app[mock_keys.stats]
    assert stats.calls["POST /crm/users/batch"] == 1 and stats.calls["POST /crm/users"] == 1
    assert len(crm_records(crm_app)) == 31
    history = (await (await client.get(f"/users/{ids[-1]}/history", headers=auth)).json())["items"]
    assert [(h["operation"], h["http_status"]) for h in history] == [("batch_create", 201)]


async def test_items_a_batch_rejects_are_sent_alone(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    status, existing = await crm_call(crm, "POST", "/crm/users", json={**JOHN, "email": "b3@example.com"})
    assert status == 201
    client = await aiohttp_client(create_app(make_config(workers=1)))
    auth = await sign_up(client)
    ids = await _backlog(client, auth, crm, 5)
    users = [await wait_status(client, auth, user_id, "synced") for user_id in ids]
    assert users[3]["crm_id"] == existing["crm_id"]  # the duplicate was linked by the single path
    assert len(crm_records(crm_app)) == 6
    assert crm_app[mock_keys.stats].calls["POST /crm/users"] == 2 + 1  # setup, first user, the duplicate


async def test_a_failed_batch_fails_each_user_and_is_retried(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    # Five users left pending by a process that stopped while the CRM hung...
    await set_faults(crm, latency_ms=30_000)
    first = await aiohttp_client(create_app(make_config(shutdown_timeout=0.1)))
    auth = await sign_up(first)
    ids = []
    for i in range(5):
        ids.append(
            (await (await first.post("/users", json={**JOHN, "email": f"f{i}@example.com"}, headers=auth)).json())["id"]
        )
    await first.close()
    # ...are due together at the next start, as one batch that fails three times, then succeeds.
    await set_faults(crm, latency_ms=0, fail_next=3, fail_status=503)
    second = await aiohttp_client(create_app(make_config(workers=1)))
    for user_id in ids:
        user = await wait_status(second, auth, user_id, "synced")
        assert user["last_error"] is None
    assert len(crm_records(crm_app)) == 5
    history = (await (await second.get(f"/users/{ids[0]}/history", headers=auth)).json())["items"]
    # Newest first: the retry (alone or batched, by the jitter of each job's backoff), then the failed batch.
    assert [(h["operation"], h["http_status"]) for h in history[1:]] == [("batch_create", 503)] * 3
    assert history[0]["http_status"] == 201
    assert (await get_user(second, auth, ids[0]))["sync_attempts"] == 4
