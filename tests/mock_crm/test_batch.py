"""POST /crm/users/batch: per-item outcomes in order, one rate-limit token."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from mock_crm import keys
from tests.mock_crm.helpers import ALICE, MakeClient, bearer, person


async def test_batch_mixed_results_in_order(mock: TestClient, headers: dict[str, str]) -> None:
    existing = await (await mock.post("/crm/users", json=person(9), headers=headers)).json()
    items = [
        {**ALICE, "idempotency_key": "b-1"},
        {**person(1), "phone": "12"},
        person(9),
        {**person(2), "idempotency_key": "b-1"},
        "not an object",
        {**person(3), "idempotency_key": 7},
    ]
    resp = await mock.post("/crm/users/batch", json={"items": items}, headers=headers)
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r["status"] for r in results] == [201, 400, 409, 422, 400, 400]
    assert results[0]["body"]["email"] == ALICE["email"]
    assert results[1]["body"]["error"] == "invalid_data" and "phone" in results[1]["body"]["fields"]
    assert results[2]["body"] == {**results[2]["body"], "error": "duplicate", "crm_id": existing["crm_id"]}
    assert results[3]["body"]["error"] == "idempotency_key_reused"
    assert "idempotency_key" in results[5]["body"]["fields"]
    assert len(mock.app[keys.store].users) == 2


async def test_batch_items_share_keys_with_single_creates(mock: TestClient, headers: dict[str, str]) -> None:
    single = await mock.post("/crm/users", json=ALICE, headers={**headers, "Idempotency-Key": "same"})
    resp = await mock.post("/crm/users/batch", json={"items": [{**ALICE, "idempotency_key": "same"}]}, headers=headers)
    result = (await resp.json())["results"][0]
    assert result == {"status": 201, "body": await single.json()}
    assert len(mock.app[keys.store].users) == 1


@pytest.mark.parametrize(
    "body",
    [{"items": []}, {"items": [ALICE] * 101}, {"items": "x"}, {}, {"items": [ALICE], "more": 1}, [ALICE]],
)
async def test_bad_batches_are_400(mock: TestClient, headers: dict[str, str], body: object) -> None:
    resp = await mock.post("/crm/users/batch", json=body, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_data"


async def test_batch_is_one_request_for_the_rate_limit(make_mock: MakeClient) -> None:
    client = await make_mock(rate_limit=0.001, rate_burst=1)
    auth = await bearer(client)
    items = [person(n) for n in range(100)]
    resp = await client.post("/crm/users/batch", json={"items": items}, headers=auth)
    assert resp.status == 200
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert len(client.app[keys.store].users) == 100
    assert (await client.get("/crm/users", headers=auth)).status == 429
