"""HubSpot fake limits and faults: X-HubSpot-RateLimit-* headers, 429 policies, injected 423/502/504/524, lost replies."""

from __future__ import annotations

import contextlib

import aiohttp
from aiohttp.test_utils import TestClient

from mock_crm import keys as mock_keys
from mock_crm.hubspot import keys
from tests.mock_crm.hubspot_helpers import AUTH, CONTACTS, create, hubspot_error, set_faults


async def test_every_api_reply_carries_the_rate_limit_headers(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await make_hubspot(rate_max=10, daily_max=500)
    first = await client.get(f"{CONTACTS}/1", headers=AUTH)
    second = await client.get(f"{CONTACTS}/1", headers=AUTH)
    assert first.status == second.status == 404  # errors carry them too
    assert first.headers["X-HubSpot-RateLimit-Max"] == "10"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(first.headers["X-HubSpot-RateLimit-Remaining"]) == 9
    assert int(second.headers["X-HubSpot-RateLimit-Remaining"]) == 8
    assert second.headers["X-HubSpot-RateLimit-Daily"] == "500"
    assert second.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "498"


async def test_over_the_rolling_window_is_429_ten_secondly_rolling(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await make_hubspot(rate_max=2)
    for _ in range(2):
        assert (await client.get(f"{CONTACTS}/1", headers=AUTH)).status == 404
    resp = await client.get(f"{CONTACTS}/1", headers=AUTH)
    body = await hubspot_error(resp, 429, "RATE_LIMITS")
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT" and body["requestId"]
    assert (await client.get("/_fake/stats", headers=AUTH)).status == 200  # admin routes are never limited


async def test_limits_count_per_token(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await make_hubspot(rate_max=1)
    assert (await client.get(f"{CONTACTS}/1", headers=AUTH)).status == 404
    form = {"grant_type": "refresh_token", "client_id": "hubspot-test-client",
            "client_secret": "hubspot-test-client-secret", "refresh_token": "hubspot-test-refresh-token"}  # fmt: skip
    token = (await (await client.post("/oauth/v1/token", data=form)).json())["access_token"]
    assert (await client.get(f"{CONTACTS}/1", headers={"Authorization": f"Bearer {token}"})).status == 404


async def test_daily_switch_makes_every_api_request_429_daily(hubspot: TestClient) -> None:
    assert (await set_faults(hubspot, daily_exhausted=True))["daily_exhausted"] is True
    body = await hubspot_error(await hubspot.post(CONTACTS, json={"properties": {}}, headers=AUTH), 429, "RATE_LIMITS")
    assert body["policyName"] == "DAILY"
    await set_faults(hubspot, daily_exhausted=False)
    await create(hubspot, 1)


async def test_daily_max_is_counted(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await make_hubspot(daily_max=1)
    assert (await client.get(f"{CONTACTS}/1", headers=AUTH)).status == 404
    body = await hubspot_error(await client.get(f"{CONTACTS}/1", headers=AUTH), 429, "RATE_LIMITS")
    assert body["policyName"] == "DAILY"


async def test_scripted_failures_use_the_asked_status_and_do_nothing(hubspot: TestClient) -> None:
    for status, category in ((423, "LOCKED"), (502, "BAD_GATEWAY"), (504, "GATEWAY_TIMEOUT"), (524, "TIMEOUT")):
        await set_faults(hubspot, fail_next=1, fail_status=status)
        resp = await hubspot.post(CONTACTS, json={"properties": {"email": "a@example.com"}}, headers=AUTH)
        await hubspot_error(resp, status, category)
    assert hubspot.app is not None and not hubspot.app[keys.store].contacts


async def test_failure_rate_answers_the_failure_status(hubspot: TestClient) -> None:
    await set_faults(hubspot, failure_rate=1, failure_status=504)
    await hubspot_error(await hubspot.get(f"{CONTACTS}/1", headers=AUTH), 504, "GATEWAY_TIMEOUT")
    assert hubspot.app is not None and hubspot.app[mock_keys.stats].injected_failures == 1


async def test_lost_reply_applies_the_write(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    await set_faults(hubspot, lost_reply_rate=1)
    resp = None
    with contextlib.suppress(aiohttp.ClientError):
        resp = await hubspot.patch(f"{CONTACTS}/{created['id']}", json={"properties": {"phone": "+1 555 0101"}},
                                   headers=AUTH)  # fmt: skip
    assert resp is None or resp.status == 502
    await set_faults(hubspot, lost_reply_rate=0)
    resp = await hubspot.get(f"{CONTACTS}/{created['id']}?properties=phone", headers=AUTH)
    assert (await resp.json())["properties"]["phone"] == "+1 555 0101"
    assert hubspot.app is not None and hubspot.app[mock_keys.stats].lost_replies == 1


async def test_latency_and_bad_settings(hubspot: TestClient) -> None:
    settings = await set_faults(hubspot, latency_ms=1, rate_max=50)
    assert settings["latency_ms"] == 1 and settings["rate_max"] == 50
    resp = await hubspot.put("/_fake/faults", json={"failure_rate": 2, "nonsense": 1}, headers=AUTH)
    body = await hubspot_error(resp, 400, "VALIDATION_ERROR")
    assert set(body["context"]) == {"failure_rate", "nonsense"}
    assert (await (await hubspot.get("/_fake/faults", headers=AUTH)).json())["failure_rate"] == 0
