"""Rate limiting, injected failures, lost replies, latency, and live fault settings."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp.test_utils import TestClient

from mock_crm import keys
from mock_crm.buckets import RateLimiter
from mock_crm.settings import FaultSettings
from tests.mock_crm.helpers import MakeClient, bearer, person


async def test_rate_limit_429_and_headers(make_mock: MakeClient) -> None:
    client = await make_mock(rate_limit=2, rate_burst=2)
    auth = await bearer(client)
    first = await client.get("/crm/users", headers=auth)
    assert first.status == 200
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert first.headers["X-RateLimit-Reset"] == "0"
    second = await client.post("/crm/users", json=person(1), headers=auth)
    assert second.status == 201
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < float(second.headers["X-RateLimit-Reset"]) <= 0.5
    third = await client.get("/crm/users", headers=auth)
    assert third.status == 429
    assert (await third.json())["error"] == "rate_limited"
    assert third.headers["Retry-After"] == "1"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    stats = client.app[keys.stats]
    assert stats.rate_limited == 1 and stats.calls["GET /crm/users"] == 2
    # Token and admin routes are neither limited nor decorated.
    token = await client.post("/crm/token", data={"grant_type": "client_credentials"})
    assert "X-RateLimit-Limit" not in token.headers
    admin = await client.get("/crm/_admin/faults", headers=auth)
    assert admin.status == 200 and "X-RateLimit-Limit" not in admin.headers


async def test_no_rate_headers_when_off(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.get("/crm/users", headers=headers)
    assert "X-RateLimit-Limit" not in resp.headers


def test_bucket_refills_and_rejections_cost_nothing() -> None:
    now = [0.0]
    limiter = RateLimiter(FaultSettings(2.0, 1, 0, 0, 0), clock=lambda: now[0])
    assert limiter.take("a").allowed
    denied = limiter.take("a")
    assert not denied.allowed and denied.retry_after == 1
    assert denied.headers["X-RateLimit-Reset"] == "0.500"
    now[0] = 0.25
    assert not limiter.take("a").allowed  # half a token: still waiting, nothing spent
    now[0] = 0.5
    assert limiter.take("a").allowed
    assert limiter.take("b").allowed  # buckets are per client
    assert RateLimiter(FaultSettings(0, 1, 0, 0, 0)).take("a") is None


async def test_failure_injection(make_mock: MakeClient) -> None:
    client = await make_mock(failure_rate=1.0)
    auth = await bearer(client)  # the token endpoint never fails
    resp = await client.post("/crm/users", json=person(1), headers=auth)
    assert resp.status == 503
    assert (await resp.json())["error"] == "unavailable"
    assert len(client.app[keys.store].users) == 0
    assert (await client.get("/crm/_admin/faults", headers=auth)).status == 200
    assert (await client.get("/healthz")).status == 200
    assert client.app[keys.stats].injected_failures == 1


async def test_failure_rate_is_a_share(make_mock: MakeClient) -> None:
    client = await make_mock(failure_rate=0.5, seed=3)
    auth = await bearer(client)
    statuses = [(await client.get("/crm/users", headers=auth)).status for _ in range(100)]
    assert 25 < statuses.count(503) < 75
    assert set(statuses) == {200, 503}


async def test_lost_replies_still_apply_the_write(make_mock: MakeClient) -> None:
    client = await make_mock(lost_reply_rate=1.0)
    auth = await bearer(client)
    outcomes = []
    for n in range(12):
        try:
            resp = await client.post("/crm/users", json=person(n), headers=auth)
        except aiohttp.ServerDisconnectedError:
            outcomes.append("disconnect")
        else:
            assert resp.status == 500
            assert (await resp.json())["error"] == "internal"
            outcomes.append("500")
    assert set(outcomes) == {"500", "disconnect"}
    assert len(client.app[keys.store].users) == 12
    stats = client.app[keys.stats]
    assert stats.lost_replies == 12 and stats.dropped_connections == outcomes.count("disconnect")
    # Reads and failed writes are never lost.
    assert (await client.get("/crm/users", headers=auth)).status == 200
    assert (await client.post("/crm/users", json=person(0), headers=auth)).status == 409


async def test_latency_is_added(make_mock: MakeClient) -> None:
    client = await make_mock(latency_ms=150)
    started = time.monotonic()
    auth = await bearer(client)
    assert time.monotonic() - started < 0.15
    started = time.monotonic()
    assert (await client.get("/crm/users", headers=auth)).status == 200
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    assert (await client.get("/crm/_admin/faults", headers=auth)).status == 200
    assert time.monotonic() - started < 0.15


async def test_token_latency_holds_token_requests_until_lowered(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.put("/crm/_admin/faults", json={"token_latency_ms": 60_000}, headers=headers)
    assert resp.status == 200
    held = asyncio.create_task(bearer(mock))
    done, _ = await asyncio.wait({held}, timeout=0.3)
    assert not done  # still held, while the API and the admin routes answer at once
    assert (await mock.get("/crm/users", headers=headers)).status == 200
    started = time.monotonic()
    await mock.put("/crm/_admin/faults", json={"token_latency_ms": 0}, headers=headers)
    async with asyncio.timeout(1):
        assert await held  # let go by the change, not after the minute
    assert time.monotonic() - started < 0.5


async def test_garbled_replies_keep_their_status_and_break_the_body(mock: TestClient, headers: dict[str, str]) -> None:
    await mock.put("/crm/_admin/faults", json={"garble_next": 3}, headers=headers)
    assert (await mock.post("/crm/users", json={"name": "x"}, headers=headers)).status == 400  # errors are not garbled
    created = await mock.post("/crm/users", json=person(1), headers=headers)
    assert created.status == 201 and created.content_type == "text/html"
    assert not (await created.text()).startswith(("{", "["))
    crm_id = next(iter(mock.app[keys.store].users))
    as_array = await (await mock.get(f"/crm/users/{crm_id}", headers=headers)).json()
    assert isinstance(as_array, list) and as_array[0]["crm_id"] == crm_id
    in_envelope = await (await mock.get(f"/crm/users/{crm_id}", headers=headers)).json()
    assert list(in_envelope) == ["data"] and in_envelope["data"]["crm_id"] == crm_id
    assert (await (await mock.get(f"/crm/users/{crm_id}", headers=headers)).json())["crm_id"] == crm_id
    stats = mock.app[keys.stats]
    assert stats.garbled_replies == 3 and mock.app[keys.faults].garble_next == 0
