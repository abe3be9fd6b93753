"""Deleting a contact here: what the CRM is told, when it is done at once, and what is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key
from crmsync.store.database import Database
from mock_crm import keys as mock_keys

from .conftest import (
    JOHN,
    Live,
    crm_call,
    crm_records,
    eventually,
    retrying,
    set_faults,
    sign_up,
    synced_user,
    wait_status,
)

ZELDA = {"name": "Zelda Quintero", "email": "zelda.quintero@example.com", "phone": "555-777-1234"}


async def gone(client: TestClient, auth: dict[str, str], user_id: str) -> bool:
    """True once GET /users/{id} answers 404."""
    return (await client.get(f"/users/{user_id}", headers=auth)).status == 404


async def every_stored_text(db: Database) -> str:
    """Every value of every row of every table, as one string: what a look at the database would find."""
    if db.engine == "sqlite":
        tables = [r[0] for r in await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        tables = [r[0] for r in await db.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    rows = [dict(row) for table in tables for row in await db.fetch(f'SELECT * FROM "{table}"')]  # noqa: S608
    return repr(rows)


async def test_a_deleted_contact_leaves_no_name_email_or_phone_anywhere(live: Live) -> None:
    client, auth = live.backend, live.auth
    resp = await client.post("/users", json=ZELDA, headers=auth)
    user = await wait_status(client, auth, (await resp.json())["id"], "synced")
    # Its history fills with its values: a CRM edit (a webhook) and failed pushes.
    status, _ = await crm_call(live.crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit",
                               json={"phone": "555-777-9999"})  # fmt: skip
    assert status == 200
    await eventually(lambda: live.crm_app[mock_keys.stats].webhooks_delivered == 1)
    await set_faults(live.crm, fail_next=3, fail_status=503)
    assert (await client.patch(f"/users/{user['id']}", json={"name": "Zelda Q. Renamed"}, headers=auth)).status == 200
    await eventually(lambda: retrying(client, auth, user["id"]))
    await wait_status(client, auth, user["id"], "synced")
    values = [*ZELDA.values(), "555-777-9999", "Zelda Q. Renamed"]
    before = await every_stored_text(client.app[db_key])
    assert [value for value in values[1:] if value not in before] == [ZELDA["phone"]]  # the check sees them

    assert (await client.delete(f"/users/{user['id']}", headers=auth)).status == 202
    await eventually(lambda: gone(client, auth, user["id"]))
    for method, path in (("PATCH", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/sync"), ("GET", "/history"),
                         ("POST", "/reconcile")):  # fmt: skip
        resp = await client.request(method, f"/users/{user['id']}{path}", json=ZELDA, headers=auth)
        assert resp.status == 404, (method, path, resp.status)
    listed = (await (await client.get("/users?sync_status=deleting", headers=auth)).json())["items"]
    assert listed == []
    await eventually(lambda: live.crm_app[mock_keys.stats].webhooks_pending == 0)  # contact.deleted came back
    stored = await every_stored_text(client.app[db_key])
    assert [value for value in values if value in stored] == []
    assert user["id"] in stored and user["crm_id"] in stored  # the tombstone: id, crm_id, deleted_at


async def test_a_delete_while_the_create_is_on_the_wire_waits_for_it_then_deletes_the_record(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    # No retries at all: waiting for the create's answer must not use up the delete's attempts.
    client = await aiohttp_client(create_app(make_config(job_retries=0)))
    auth = await sign_up(client)
    await set_faults(crm, latency_ms=1500)
    user = await (await client.post("/users", json=JOHN, headers=auth)).json()
    stats = crm.app[mock_keys.stats]
    await eventually(lambda: stats.calls["POST /crm/users"] == 1)  # the create is on the wire
    resp = await client.delete(f"/users/{user['id']}", headers=auth)
    assert resp.status == 202 and (await resp.json())["sync_status"] == "deleting"
    await set_faults(crm, latency_ms=0)
    await eventually(lambda: gone(client, auth, user["id"]))
    assert crm_records(crm.app) == {}  # the record the create made was deleted, not left behind
    assert stats.calls["DELETE /crm/users/{crm_id}"] == 1


async def test_a_contact_the_crm_refused_is_deleted_at_once(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await set_faults(crm, fail_next=1, fail_status=422)  # the CRM refuses the create: it made nothing
    user = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    failed = await wait_status(backend, auth, user["id"], "failed")
    assert failed["next_retry_at"] is None
    assert (await backend.delete(f"/users/{user['id']}", headers=auth)).status == 204
    assert await gone(backend, auth, user["id"])
    assert crm.app[mock_keys.stats].calls["DELETE /crm/users/{crm_id}"] == 0


async def test_a_create_whose_answer_was_lost_is_found_and_deleted_not_orphaned(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await set_faults(crm, lost_reply_rate=1.0)  # the CRM makes the record, but its answer never arrives
    user = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    await eventually(lambda: retrying(backend, auth, user["id"]))
    assert len(crm_records(crm.app)) == 1
    assert (await backend.delete(f"/users/{user['id']}", headers=auth)).status == 202  # it may be in the CRM
    await set_faults(crm, lost_reply_rate=0.0)
    await eventually(lambda: gone(backend, auth, user["id"]))
    assert crm_records(crm.app) == {}


async def test_a_failing_crm_delete_is_retried_then_failed_naming_the_delete(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    # Two retries, a second apart: long enough to see the delete waiting for its retry on a loaded machine.
    client = await aiohttp_client(create_app(make_config(job_retries=2, job_backoff=(1.0, 1.0))))
    auth = await sign_up(client)
    resp = await client.post("/users", json=JOHN, headers=auth)
    user = await wait_status(client, auth, (await resp.json())["id"], "synced")
    await set_faults(crm, failure_rate=1.0)
    assert (await client.delete(f"/users/{user['id']}", headers=auth)).status == 202

    async def retrying_delete() -> dict[str, Any] | None:
        current = await (await client.get(f"/users/{user['id']}", headers=auth)).json()
        return current if current["sync_status"] == "deleting" and current["next_retry_at"] else None

    waiting = await eventually(retrying_delete)
    assert waiting["last_error"].startswith("The delete in the CRM failed")
    failed = await wait_status(client, auth, user["id"], "failed")
    assert failed["last_error"].startswith("The delete in the CRM failed") and failed["next_retry_at"] is None
    history = (await (await client.get(f"/users/{user['id']}/history", headers=auth)).json())["items"]
    deletes = [item for item in history if item.get("operation") == "delete"]
    assert len(deletes) == 3 * 3  # three runs (the first and two retries) of three requests each
    assert crm.app[mock_keys.stats].calls["DELETE /crm/users/{crm_id}"] == 9
    assert list(crm_records(crm.app)) == [user["crm_id"]]


async def test_a_contact_deleted_here_and_by_a_person_in_the_crm_ends_deleted_and_dashboards_hear_it(
    live: Live,
) -> None:
    client, auth = live.backend, live.auth
    user = await synced_user(client, auth)
    await set_faults(live.crm, failure_rate=1.0)  # our delete cannot get through...
    assert (await client.delete(f"/users/{user['id']}", headers=auth)).status == 202
    await eventually(lambda: _delete_retrying(client, auth, user["id"]))
    token = auth["Authorization"].split()[1]
    async with client.ws_connect(f"/events?token={token}") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        status, _ = await crm_call(live.crm, "DELETE", f"/crm/_admin/users/{user['crm_id']}")  # ...a person's does
        assert status == 204
        async with asyncio.timeout(10):
            while (event := await ws.receive_json())["type"] != "user_deleted":
                pass
    assert event["user_id"] == user["id"]
    assert await gone(client, auth, user["id"])
    await set_faults(live.crm, failure_rate=0.0)
    assert crm_records(live.crm_app) == {}


async def _delete_retrying(client: TestClient, auth: dict[str, str], user_id: str) -> bool:
    current = await (await client.get(f"/users/{user_id}", headers=auth)).json()
    return current["sync_status"] == "deleting" and current["last_error"] is not None


async def test_a_contact_a_person_adds_in_the_crm_while_ours_with_its_email_is_deleted_is_kept(live: Live) -> None:
    client, auth = live.backend, live.auth
    await set_faults(live.crm, latency_ms=1500)
    ours = await (await client.post("/users", json=JOHN, headers=auth)).json()
    stats = live.crm_app[mock_keys.stats]
    await eventually(lambda: stats.calls["POST /crm/users"] == 1)  # our create is on the wire...
    assert (await client.delete(f"/users/{ours['id']}", headers=auth)).status == 202  # ...when we delete it
    status, record = await crm_call(live.crm, "POST", "/crm/_admin/users", json=JOHN)  # and a person adds it
    assert status == 201
    await set_faults(live.crm, latency_ms=0)
    await eventually(lambda: gone(client, auth, ours["id"]))
    await eventually(lambda: stats.webhooks_pending == 0)
    # The CRM's contact.created waited (answered 404, delivered again) while ours held the email; this mock
    # gives up sooner than our create took, so the sweep that repairs missed webhooks brings it in.
    assert (await client.post("/reconcile", headers=auth)).status == 202

    async def theirs() -> list[dict[str, Any]] | None:
        items = (await (await client.get("/users", headers=auth)).json())["items"]
        return items if items and items[0]["sync_status"] == "synced" else None

    [kept] = await eventually(theirs)
    assert kept["crm_id"] == record["crm_id"] and kept["id"] != ours["id"]
    assert list(crm_records(live.crm_app)) == [record["crm_id"]]  # the person's contact was not deleted
