"""Admin API: live fault settings and counters."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from mock_crm import keys
from tests.mock_crm.helpers import person


async def test_admin_faults_get_and_put(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.get("/crm/_admin/faults", headers=headers)
    assert await resp.json() == {
        "rate_limit": 0.0,
        "rate_burst": 1,
        "failure_rate": 0.0,
        "lost_reply_rate": 0.0,
        "latency_ms": 0.0,
        "fail_next": 0,
        "fail_status": 503,
        "merge_creates_next": 0,
        "token_latency_ms": 0.0,
        "garble_next": 0,
    }
    resp = await mock.put("/crm/_admin/faults", json={"rate_limit": 2.5, "failure_rate": 0.25}, headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["rate_limit"] == 2.5 and body["rate_burst"] == 3 and body["failure_rate"] == 0.25
    assert mock.app[keys.faults].failure_rate == 0.25
    await mock.put("/crm/_admin/faults", json={"failure_rate": 0, "rate_limit": 1, "rate_burst": 1.0}, headers=headers)
    assert (await mock.get("/crm/users", headers=headers)).status == 200
    assert (await mock.get("/crm/users", headers=headers)).status == 429


@pytest.mark.parametrize(
    "body",
    [
        {"failure_rate": 1.5},
        {"failure_rate": "0.5"},
        {"failure_rate": None},
        {"lost_reply_rate": -0.1},
        {"rate_limit": True},
        {"rate_burst": 0},
        {"rate_burst": 1.5},
        {"latency_ms": 1e9},
        {"token_latency_ms": -1},
        {"garble_next": 1.5},
        {"chaos": 1},
        {},
        [1],
    ],
)
async def test_admin_faults_reject_bad_values(mock: TestClient, headers: dict[str, str], body: object) -> None:
    before = mock.app[keys.faults].to_json()
    resp = await mock.put("/crm/_admin/faults", json=body, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_data"
    assert mock.app[keys.faults].to_json() == before


async def test_admin_stats(mock: TestClient, headers: dict[str, str]) -> None:
    await mock.post("/crm/users", json=person(1), headers=headers)
    resp = await mock.get("/crm/_admin/stats", headers=headers)
    body = await resp.json()
    assert body["tokens_issued"] == 1 and body["users"] == 1
    assert body["calls"]["POST /crm/users"] == 1 and body["responses"]["201"] == 1


async def test_scripted_failures_answer_the_next_requests(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.put("/crm/_admin/faults", json={"fail_next": 2, "fail_status": 400}, headers=headers)
    assert resp.status == 200
    first = await mock.post("/crm/users", json=person(1), headers=headers)
    assert first.status == 400 and (await first.json())["error"] == "invalid_data"
    assert (await mock.get("/crm/users", headers=headers)).status == 400
    assert (await mock.get("/crm/users", headers=headers)).status == 200
    assert len(mock.app[keys.store].users) == 0
    bad = await mock.put("/crm/_admin/faults", json={"fail_status": 200}, headers=headers)
    assert bad.status == 400
