"""A contact's life under real concurrency, on both engines: two replicas on one database, the CRM's
webhooks reaching one of them, people acting here and in the CRM at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient

from crmsync.app import create_app
from crmsync.keys import config_key
from mock_crm import keys as mock_keys

from .conftest import JOHN, Live, crm_call, crm_records, eventually, get_user, synced_user

PEOPLE = 20


async def second_replica(live: Live, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    """Another backend on the live backend's database (the CRM's webhooks keep going to the first)."""
    return await aiohttp_client(create_app(live.backend.app[config_key]))


async def test_contacts_added_here_and_in_the_crm_at_once_are_linked_never_doubled(
    live: Live, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    other = await second_replica(live, aiohttp_client)
    emails = [f"both{i}@example.com" for i in range(PEOPLE)]

    async def here(email: str) -> None:
        async def created() -> bool:
            resp = await other.post("/users", json={**JOHN, "email": email}, headers=live.auth)
            if resp.status == 503:  # PostgreSQL broke a deadlock with the CRM's create: nothing saved, try again
                assert resp.headers["Retry-After"]
                return False
            # 409: the CRM's create was imported first, and the answer names that contact.
            body = await resp.json()
            assert resp.status == 201 or (resp.status == 409 and body["error"] == "duplicate_email" and body["id"]), (
                body
            )
            return True

        await eventually(created)

    async def in_the_crm(email: str) -> None:
        status, body = await crm_call(live.crm, "POST", "/crm/_admin/users", json={**JOHN, "email": email})
        assert status in (201, 409), body  # 409: our create got there first

    async def sweeps() -> None:
        for _ in range(5):
            assert (await other.post("/reconcile", headers=live.auth)).status == 202

    await asyncio.gather(*(here(e) for e in emails), *(in_the_crm(e) for e in emails), sweeps())
    stats = live.crm_app[mock_keys.stats]

    async def settled() -> list[dict[str, object]] | None:
        items = (await (await live.backend.get("/users?limit=500", headers=live.auth)).json())["items"]
        done = stats.webhooks_pending == 0 and {item["sync_status"] for item in items} == {"synced"}
        return items if done else None

    items = await eventually(settled, timeout=30)
    records = {record.email: crm_id for crm_id, record in crm_records(live.crm_app).items()}
    assert sorted(item["email"] for item in items) == sorted(emails) == sorted(records)
    assert {item["email"]: item["crm_id"] for item in items} == records


async def test_deletes_here_on_two_replicas_and_in_the_crm_at_once_end_in_one_tombstone(
    live: Live, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    other = await second_replica(live, aiohttp_client)
    users = [await synced_user(live.backend, live.auth, email=f"gone{i}@example.com") for i in range(5)]

    async def delete(client: TestClient, user_id: str) -> None:
        resp = await client.delete(f"/users/{user_id}", headers=live.auth)
        assert resp.status in (202, 204, 404), await resp.text()

    async def person_deletes(crm_id: str) -> None:
        status, body = await crm_call(live.crm, "DELETE", f"/crm/_admin/users/{crm_id}")
        assert status in (204, 404), body  # 404: our delete got there first

    await asyncio.gather(*(
        step for user in users for step in (
            delete(live.backend, user["id"]), delete(other, user["id"]), person_deletes(user["crm_id"])
        )
    ))  # fmt: skip

    async def all_gone() -> bool:
        for client in (live.backend, other):
            for user in users:
                if (await client.get(f"/users/{user['id']}", headers=live.auth)).status != 404:
                    return False
        return True

    await eventually(all_gone, timeout=30)
    assert crm_records(live.crm_app) == {}
    await eventually(lambda: live.crm_app[mock_keys.stats].webhooks_pending == 0)
    survivor = await synced_user(other, live.auth, email="survivor@example.com")  # the replicas still work
    assert (await get_user(live.backend, live.auth, survivor["id"]))["sync_status"] == "synced"
