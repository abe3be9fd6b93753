"""Idempotency-Key: replay of the first success, mismatch detection, scoping and expiry."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from mock_crm import keys
from mock_crm.idempotency import IdempotencyCache
from tests.mock_crm.helpers import ALICE, person


async def test_same_key_same_body_replays(mock: TestClient, headers: dict[str, str]) -> None:
    idem = {**headers, "Idempotency-Key": "create-alice-1"}
    first = await mock.post("/crm/users", json=ALICE, headers=idem)
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    # Same JSON in another key order is the same body.
    reordered = dict(reversed(list(ALICE.items())))
    again = await mock.post("/crm/users", json=reordered, headers=idem)
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert len(mock.app[keys.store].users) == 1


async def test_same_key_other_body_is_422(mock: TestClient, headers: dict[str, str]) -> None:
    idem = {**headers, "Idempotency-Key": "k1"}
    assert (await mock.post("/crm/users", json=ALICE, headers=idem)).status == 201
    resp = await mock.post("/crm/users", json=person(2), headers=idem)
    assert resp.status == 422
    assert (await resp.json())["error"] == "idempotency_key_reused"
    assert len(mock.app[keys.store].users) == 1


async def test_failures_are_not_stored(mock: TestClient, headers: dict[str, str]) -> None:
    idem = {**headers, "Idempotency-Key": "k2"}
    assert (await mock.post("/crm/users", json={**ALICE, "phone": "1"}, headers=idem)).status == 400
    assert (await mock.post("/crm/users", json=ALICE, headers=idem)).status == 201


async def test_replay_survives_later_edits(mock: TestClient, headers: dict[str, str]) -> None:
    idem = {**headers, "Idempotency-Key": "k3"}
    created = await (await mock.post("/crm/users", json=ALICE, headers=idem)).json()
    await mock.patch(f"/crm/users/{created['crm_id']}", json={"name": "Changed"}, headers=headers)
    replay = await mock.post("/crm/users", json=ALICE, headers=idem)
    assert await replay.json() == created


async def test_bad_key_header_is_400(mock: TestClient, headers: dict[str, str]) -> None:
    for key in ("", "x" * 256):
        resp = await mock.post("/crm/users", json=ALICE, headers={**headers, "Idempotency-Key": key})
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"


async def test_meetings_have_their_own_key_space(mock: TestClient, headers: dict[str, str]) -> None:
    idem = {**headers, "Idempotency-Key": "shared"}
    assert (await mock.post("/crm/users", json=ALICE, headers=idem)).status == 201
    meeting = {"title": "Kick-off", "starts_at": "2026-12-01T10:00:00Z"}
    first = await mock.post("/crm/meetings", json=meeting, headers=idem)
    assert first.status == 201
    again = await mock.post("/crm/meetings", json=meeting, headers=idem)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert len(mock.app[keys.store].meetings) == 1


def test_keys_expire_after_ttl() -> None:
    now = [0.0]
    cache = IdempotencyCache(ttl=10, clock=lambda: now[0])
    cache.store(("c", "users", "old"), "fp", 201, {})
    now[0] = 5
    cache.store(("c", "users", "new"), "fp", 201, {})
    assert cache.lookup(("c", "users", "old"), "fp") is not None
    now[0] = 11
    assert cache.lookup(("c", "users", "old"), "fp") is None
    assert cache.lookup(("c", "users", "new"), "fp") is not None
    assert len(cache) == 1
    assert IdempotencyCache().ttl >= 24 * 3600
