"""PUT and PATCH /users/{id}: validated like POST, carried to the CRM by the outbox, coalesced."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.timeutil import now_iso
from mock_crm import keys as mock_keys

from .conftest import JOHN, crm_records, eventually, get_user, post_webhook, set_faults, synced_user, wait_status


async def test_put_replaces_and_reaches_the_crm(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    new = {"name": "Jane Doe", "email": "Jane.Doe@example.com", "phone": "+1 (555) 010-9999"}
    resp = await backend.put(f"/users/{user['id']}", json=new, headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert body["sync_status"] == "pending" and body["email"] == "jane.doe@example.com"
    synced = await wait_status(backend, auth, user["id"], "synced")
    record = crm_records(crm_app)[user["crm_id"]]
    assert (record.name, record.email, record.phone) == (synced["name"], synced["email"], synced["phone"])
    assert crm_app[mock_keys.stats].calls["PATCH /crm/users/{crm_id}"] == 1


async def test_patch_sends_only_what_changed(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    resp = await backend.patch(f"/users/{user['id']}", json={"phone": "555-000-1234"}, headers=auth)
    assert resp.status == 200
    await wait_status(backend, auth, user["id"], "synced")
    assert crm_records(crm_app)[user["crm_id"]].phone == "555-000-1234"


async def test_an_edit_that_changes_nothing_is_not_pushed(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    resp = await backend.patch(f"/users/{user['id']}", json={"phone": JOHN["phone"]}, headers=auth)
    assert resp.status == 200 and (await resp.json())["sync_status"] == "synced"
    assert crm_app[mock_keys.stats].calls["PATCH /crm/users/{crm_id}"] == 0


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [("PUT", {"name": "x"}, "email"), ("PATCH", {}, "body"), ("PATCH", {"phone": "1"}, "phone"),
     ("PATCH", {"name": None}, "name"), ("PUT", {**JOHN, "extra": 1}, "extra")],
)  # fmt: skip
async def test_edits_are_validated_and_nothing_is_written(
    backend: TestClient, auth: dict[str, str], method: str, body: dict, field: str
) -> None:
    user = await synced_user(backend, auth)
    resp = await backend.request(method, f"/users/{user['id']}", json=body, headers=auth)
    assert resp.status == 422 and field in (await resp.json())["fields"]
    assert await get_user(backend, auth, user["id"]) == user


async def test_edit_to_an_email_another_user_has_is_409(backend: TestClient, auth: dict[str, str]) -> None:
    first = await synced_user(backend, auth)
    second = await synced_user(backend, auth, email="second@example.com")
    resp = await backend.patch(f"/users/{second['id']}", json={"email": first["email"]}, headers=auth)
    assert resp.status == 409 and (await resp.json())["id"] == first["id"]
    assert await get_user(backend, auth, second["id"]) == second


async def test_quick_edits_coalesce_into_one_push_of_the_latest_values(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    await set_faults(crm, latency_ms=300)
    for i in range(5):
        resp = await backend.patch(f"/users/{user['id']}", json={"phone": f"555-000-000{i}"}, headers=auth)
        assert resp.status == 200
    await set_faults(crm, latency_ms=0)
    synced = await wait_status(backend, auth, user["id"], "synced")
    assert synced["phone"] == "555-000-0004"
    assert crm_records(crm_app)[user["crm_id"]].phone == "555-000-0004"
    # The first edit's push may already be in flight; every later edit rides on one more push.
    assert crm_app[mock_keys.stats].calls["PATCH /crm/users/{crm_id}"] <= 2


async def test_edits_while_the_create_is_in_flight_follow_it(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    await set_faults(crm, latency_ms=300)
    created = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    for name in ("J. Smith", "Johnny Smith"):
        resp = await backend.patch(f"/users/{created['id']}", json={"name": name}, headers=auth)
        assert resp.status == 200
    await set_faults(crm, latency_ms=0)
    synced = await wait_status(backend, auth, created["id"], "synced")
    assert crm_records(crm_app)[synced["crm_id"]].name == "Johnny Smith"
    assert len(crm_records(crm_app)) == 1
    assert crm_app[mock_keys.stats].calls["POST /crm/users"] == 1


async def test_a_record_that_drifted_from_our_snapshot_still_converges(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    # A webhook (hand-sent, as scripts/send_webhook.sh does) claims a phone the CRM never stored.
    event = {"crm_id": user["crm_id"], "updated_fields": {"phone": "555-999-0000"}, "timestamp": now_iso()}
    status, _ = await post_webhook(backend, event)
    assert status == 200
    resp = await backend.patch(f"/users/{user['id']}", json={"name": "Johnny Smith"}, headers=auth)
    assert resp.status == 200

    async def agreed() -> bool:
        local = await get_user(backend, auth, user["id"])
        record = crm_records(crm_app)[user["crm_id"]]
        return local["sync_status"] == "synced" and (record.name, record.phone) == (local["name"], local["phone"])

    await eventually(agreed)
