"""A hanging token endpoint and a failing CRM: pushes fail over promptly, /readyz answers fast and tells the truth."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.api.pages import OPENAPI
from crmsync.app import create_app
from crmsync.config import Config
from crmsync.crm.errors import CrmUnavailable
from crmsync.keys import crm_key
from mock_crm import keys as mock_keys

from .conftest import JOHN, crm_session, crm_token, get_user, set_faults, sign_up, synced_user, wait_status
from .polling import eventually
from .test_openapi import assert_documented, load

HUNG = "The CRM's token endpoint did not answer within 1 s."
DOWN = "The CRM could not be reached after 3 attempts (HTTP 503)."


@contextlib.asynccontextmanager
async def tokens_hanging(crm: TestServer, latency_ms: int = 60_000) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The CRM's token endpoint hangs in the block; it yields what lets it answer again, which the exit does too.

    The admin calls use a token got beforehand: getting one would hang as well.
    """
    headers = await crm_token(crm)

    async def put(latency_ms: int) -> None:
        async with crm_session(crm) as session:
            resp = await session.put("/crm/_admin/faults", json={"token_latency_ms": latency_ms}, headers=headers)
            assert resp.status == 200, await resp.text()

    await put(latency_ms)
    try:
        yield lambda: put(0)
    finally:
        await put(0)


async def readyz(client: TestClient) -> tuple[int, dict[str, Any]]:
    """GET /readyz, checked against the OpenAPI document."""
    resp = await client.get("/readyz")
    body = await resp.json()
    assert_documented(load(OPENAPI), "GET", "/readyz", resp.status, body)
    return resp.status, body


async def test_a_hanging_token_endpoint_is_asked_once_and_fails_every_waiter_at_once(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(crm_token_timeout=1.0)))
    tokens, stats = client.app[crm_key].transport.tokens, crm_app[mock_keys.stats]
    async with tokens_hanging(crm):
        asked = stats.calls["POST /crm/token"]
        started = time.monotonic()
        async with asyncio.timeout(5):
            outcomes = await asyncio.gather(*(tokens.get() for _ in range(8)), return_exceptions=True)
        elapsed = time.monotonic() - started
        assert stats.calls["POST /crm/token"] - asked == 1
    assert all(isinstance(outcome, CrmUnavailable) for outcome in outcomes), outcomes
    assert {outcome.message for outcome in outcomes} == {HUNG}
    assert 0.9 < elapsed < 2.0  # one bounded fetch for all eight, not one after another
    assert await tokens.get()  # the endpoint answers again: the next fetch works


async def test_pushes_fail_over_promptly_and_readyz_stays_fast_while_the_token_endpoint_hangs(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(crm_token_timeout=1.0)))
    auth = await sign_up(client)
    async with tokens_hanging(crm):
        ids = []
        for n in range(3):
            resp = await client.post("/users", json={**JOHN, "email": f"hang{n}@example.com"}, headers=auth)
            assert resp.status == 201
            ids.append((await resp.json())["id"])

        # A flood of probes while the pushes wait for a token: every one answers within 2 s.
        started = time.monotonic()
        answers = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
        assert time.monotonic() - started < 2.0
        assert {answer.status for answer in answers} == {200}  # the outbox still takes writes

        async def failed_over() -> list[dict[str, Any]] | None:
            users = [await get_user(client, auth, user_id) for user_id in ids]
            return users if all(u["last_error"] == HUNG and u["next_retry_at"] for u in users) else None

        started = time.monotonic()
        await eventually(failed_over, timeout=3)  # the normal retry path, after one bounded fetch
        assert time.monotonic() - started < 3

        async def crm_failing() -> dict[str, Any] | None:
            status, body = await readyz(client)
            return body if status == 200 and body["checks"]["crm"] != "ok" else None

        body = await eventually(crm_failing)
        assert body["status"] == "degraded" and body["checks"] == {"database": "ok", "crm": f"failed: {HUNG}"}
        crm_state = body["details"]["crm"]
        assert crm_state["last_error"] == HUNG and crm_state["failing_since"] and crm_state["consecutive_failures"] >= 1
    for user_id in ids:
        await wait_status(client, auth, user_id, "synced")
    await eventually(lambda: _ready(client))


async def _ready(client: TestClient) -> bool:
    status, body = await readyz(client)
    return status == 200 and body["status"] == "ready"


async def test_readyz_never_says_ok_while_the_crm_fails_though_a_token_is_cached(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await synced_user(backend, auth)  # a token is cached and the CRM answered
    status, body = await readyz(backend)
    assert status == 200 and body["checks"] == {"database": "ok", "crm": "ok"}
    assert body["details"]["crm"]["last_success_at"] and body["details"]["crm"]["consecutive_failures"] == 0

    await set_faults(crm, failure_rate=1)
    resp = await backend.post("/users", json={**JOHN, "email": "down@example.com"}, headers=auth)
    user_id = (await resp.json())["id"]

    async def crm_failing() -> dict[str, Any] | None:
        status, body = await readyz(backend)
        return body if status == 200 and body["checks"]["crm"] != "ok" else None

    body = await eventually(crm_failing)
    assert body["status"] == "degraded" and body["checks"]["crm"] == f"failed: {DOWN}"
    crm_state = body["details"]["crm"]
    assert crm_state["last_error"] == DOWN and crm_state["consecutive_failures"] >= 1
    assert crm_state["last_success_at"] <= crm_state["failing_since"]

    await set_faults(crm, failure_rate=0)
    await wait_status(backend, auth, user_id, "synced")  # its retry succeeds: the CRM is fine again
    await eventually(lambda: _ready(backend))
