"""Pulling from the CRM: per user on demand, and the sweep that repairs a dropped webhook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config

from .conftest import JOHN, crm_call, crm_records, eventually, get_user, sign_up, synced_user, wait_status


async def _crm_edit(crm: TestServer, crm_id: str, **fields: str) -> None:
    status, body = await crm_call(crm, "POST", f"/crm/_admin/users/{crm_id}/edit", json=fields)
    assert status == 200, body


async def test_reconcile_pulls_a_crm_change(backend: TestClient, auth: dict[str, str], crm: TestServer) -> None:
    user = await synced_user(backend, auth)
    await _crm_edit(crm, user["crm_id"], phone="987-654-3210")  # no webhook reaches us in this setup
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert body["changed_fields"] == {"phone": "987-654-3210"}
    assert (await get_user(backend, auth, user["id"]))["phone"] == "987-654-3210"
    again = await (await backend.post(f"/users/{user['id']}/reconcile", headers=auth)).json()
    assert again["changed_fields"] == {}


async def test_reconcile_of_a_user_not_yet_in_the_crm_is_409(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await crm_call(crm, "PUT", "/crm/_admin/faults", json={"latency_ms": 5000})
    resp = await backend.post("/users", json=JOHN, headers=auth)
    user = await resp.json()
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 409 and (await resp.json())["error"] == "conflict"


async def test_a_conflict_is_won_by_the_crm_and_recorded(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    await crm_call(crm, "PUT", "/crm/_admin/faults", json={"latency_ms": 300})
    # A local edit to phone and name while, in the CRM, a person changes the phone too.
    resp = await backend.patch(
        f"/users/{user['id']}", json={"phone": "111-000-0000", "name": "Jon Smith"}, headers=auth
    )
    assert resp.status == 200
    await _crm_edit(crm, user["crm_id"], phone="999-000-0000")
    await crm_call(crm, "PUT", "/crm/_admin/faults", json={"latency_ms": 0})
    synced = await wait_status(backend, auth, user["id"], "synced")
    # The CRM won the phone; our name change, which the CRM did not touch, was still pushed.
    assert synced["phone"] == "999-000-0000" and synced["name"] == "Jon Smith"
    record = crm_records(crm_app)[user["crm_id"]]
    assert (record.phone, record.name) == ("999-000-0000", "Jon Smith")
    history = (await (await backend.get(f"/users/{user['id']}/history", headers=auth)).json())["items"]
    [conflict] = [item for item in history if item["type"] == "conflict"]
    assert conflict["field"] == "phone"
    assert (conflict["local_value"], conflict["crm_value"], conflict["winner"]) == (
        "111-000-0000",
        "999-000-0000",
        "crm",
    )


async def test_the_periodic_sweep_repairs_a_dropped_webhook(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
) -> None:
    client = await aiohttp_client(create_app(make_config(reconcile_interval=0.1)))
    auth = await sign_up(client)
    user = await synced_user(client, auth)
    other = await synced_user(client, auth, email="other@example.com")
    await _crm_edit(crm, user["crm_id"], name="Jonathan Smith", phone="987-654-3210")

    async def repaired() -> bool:
        current = await get_user(client, auth, user["id"])
        return current["phone"] == "987-654-3210" and current["name"] == "Jonathan Smith"

    await eventually(repaired)
    assert (await get_user(client, auth, other["id"]))["phone"] == JOHN["phone"]


async def test_a_full_sweep_on_demand(backend: TestClient, auth: dict[str, str], crm: TestServer) -> None:
    users = [await synced_user(backend, auth, email=f"s{i}@example.com") for i in range(3)]
    for user in users:
        await _crm_edit(crm, user["crm_id"], phone="555-123-4567")
    resp = await backend.post("/reconcile", headers=auth)
    assert resp.status == 202

    async def all_repaired() -> bool:
        phones = [(await get_user(backend, auth, u["id"]))["phone"] for u in users]
        return phones == ["555-123-4567"] * 3

    await eventually(all_repaired)


async def test_a_record_deleted_in_the_crm_waits_for_a_person_then_is_created_again(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    status, _ = await crm_call(crm, "DELETE", f"/crm/users/{user['crm_id']}")
    assert status == 204
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 200
    failed = await get_user(backend, auth, user["id"])
    assert failed["sync_status"] == "failed" and failed["last_error"] == "The contact was deleted in the CRM."
    assert failed["next_retry_at"] is None and failed["crm_id"] is None  # never quietly created again
    assert failed["deleted_in_crm"] == {"crm_id": user["crm_id"]}
    assert len(crm_records(crm_app)) == 0
    # Retry is the person's choice to create it in the CRM again.
    assert (await backend.post(f"/users/{user['id']}/sync", headers=auth)).status == 202
    again = await wait_status(backend, auth, user["id"], "synced")
    assert again["crm_id"] not in (None, user["crm_id"]) and "deleted_in_crm" not in again
    assert list(crm_records(crm_app)) == [again["crm_id"]]
