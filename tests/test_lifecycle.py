"""A contact's whole life: deleted here or in the CRM, created in the CRM, recovered when the CRM lost it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key
from mock_crm import keys as mock_keys

from .conftest import (
    JOHN,
    Live,
    LiveFactory,
    crm_call,
    crm_records,
    eventually,
    get_user,
    retrying,
    set_faults,
    sign_up,
    synced_user,
    wait_status,
)
from .script_runs import run_script

DELETED_IN_CRM = "The contact was deleted in the CRM."


async def gone(client: TestClient, auth: dict[str, str], user_id: str) -> bool:
    """True once GET /users/{id} answers 404."""
    return (await client.get(f"/users/{user_id}", headers=auth)).status == 404


async def tombstone(client: TestClient, user_id: str) -> dict[str, Any]:
    """The user's row as stored: a tombstone keeps id, crm_id and deleted_at only."""
    row = await client.app[db_key].fetchrow(
        "SELECT id, name, email, phone, crm_id, deleted_at FROM users WHERE id = $1", user_id
    )
    return {key: row[key] for key in ("id", "name", "email", "phone", "crm_id", "deleted_at")}


async def test_delete_removes_the_crm_record_then_keeps_only_a_tombstone(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    resp = await backend.delete(f"/users/{user['id']}", headers=auth)
    assert resp.status == 202 and (await resp.json())["sync_status"] == "deleting"
    await eventually(lambda: gone(backend, auth, user["id"]))
    assert crm_records(crm_app) == {}
    row = await tombstone(backend, user["id"])
    assert row["name"] is row["email"] is row["phone"] is None
    assert row["crm_id"] == user["crm_id"] and row["deleted_at"] is not None
    listed = await (await backend.get("/users", headers=auth)).json()
    assert user["id"] not in [item["id"] for item in listed["items"]]
    assert (await backend.delete(f"/users/{user['id']}", headers=auth)).status == 404
    # Its email is free again.
    assert (await backend.post("/users", json=JOHN, headers=auth)).status == 201


async def test_a_user_that_never_reached_the_crm_is_deleted_at_once(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(workers=1, batch_size=1)))
    auth = await sign_up(client)
    await set_faults(crm, latency_ms=2000)  # the one worker is busy with the first user's create...
    first = await (await client.post("/users", json=JOHN, headers=auth)).json()
    await eventually(lambda: crm_app[mock_keys.stats].calls["POST /crm/users"] == 1)
    second = await (await client.post("/users", json={**JOHN, "email": "second@example.com"}, headers=auth)).json()
    resp = await client.delete(f"/users/{second['id']}", headers=auth)  # ...so the second never went out
    assert resp.status == 204
    assert await gone(client, auth, second["id"])
    await set_faults(crm, latency_ms=0)
    await wait_status(client, auth, first["id"], "synced")
    assert [record.email for record in crm_records(crm_app).values()] == [JOHN["email"]]


async def test_a_crm_delete_that_keeps_failing_is_shown_failed_then_retried(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(job_retries=1)))
    auth = await sign_up(client)
    user = await synced_user(client, auth)
    await set_faults(crm, failure_rate=1.0)
    assert (await client.delete(f"/users/{user['id']}", headers=auth)).status == 202
    failed = await wait_status(client, auth, user["id"], "failed")
    assert failed["last_error"].startswith("The delete in the CRM failed") and failed["next_retry_at"] is None
    assert (await client.patch(f"/users/{user['id']}", json={"name": "Too Late"}, headers=auth)).status == 409
    await set_faults(crm, failure_rate=0.0)
    assert (await client.post(f"/users/{user['id']}/sync", headers=auth)).status == 202  # Retry: the delete
    await eventually(lambda: gone(client, auth, user["id"]))
    assert crm_records(crm_app) == {}


async def person_deletes(live: Live, crm_id: str) -> None:
    """A person deletes the contact in the CRM (the mock sends contact.deleted)."""
    status, _ = await crm_call(live.crm, "DELETE", f"/crm/_admin/users/{crm_id}")
    assert status == 204


async def test_a_contact_deleted_in_the_crm_is_unlinked_and_waits_for_a_person(live: Live) -> None:
    client, auth = live.backend, live.auth
    user = await synced_user(client, auth)
    await person_deletes(live, user["crm_id"])
    failed = await wait_status(client, auth, user["id"], "failed")
    assert failed["last_error"] == DELETED_IN_CRM and failed["crm_id"] is None
    assert failed["deleted_in_crm"] == {"crm_id": user["crm_id"]}
    history = (await (await client.get(f"/users/{user['id']}/history", headers=auth)).json())["items"]
    assert any(item["type"] == "lifecycle" and item["event"] == "deleted_in_crm" for item in history)
    # The person chooses to delete it here as well: at once, since nothing is left in the CRM.
    assert (await client.delete(f"/users/{user['id']}", headers=auth)).status == 204
    assert await gone(client, auth, user["id"])


async def test_with_on_crm_delete_delete_the_deletion_is_mirrored(make_live: LiveFactory) -> None:
    live = await make_live(on_crm_delete="delete")
    user = await synced_user(live.backend, live.auth)
    await person_deletes(live, user["crm_id"])
    await eventually(lambda: gone(live.backend, live.auth, user["id"]))


async def test_a_push_that_finds_the_record_gone_unlinks_the_user(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    assert (await crm_call(crm, "DELETE", f"/crm/users/{user['crm_id']}"))[0] == 204  # no webhook reaches us
    assert (await backend.patch(f"/users/{user['id']}", json={"name": "Edited"}, headers=auth)).status == 200
    failed = await wait_status(backend, auth, user["id"], "failed")
    assert failed["last_error"] == DELETED_IN_CRM and failed["crm_id"] is None
    assert (await backend.post(f"/users/{user['id']}/sync", headers=auth)).status == 202
    recreated = await wait_status(backend, auth, user["id"], "synced")
    assert crm_records(crm_app)[recreated["crm_id"]].name == "Edited"


async def person_creates(crm: TestServer, **fields: str) -> dict[str, Any]:
    """A person adds a contact in the CRM (the mock sends contact.created)."""
    status, record = await crm_call(crm, "POST", "/crm/_admin/users", json={**JOHN, **fields})
    assert status == 201, record
    return record


async def users_with(client: TestClient, auth: dict[str, str], crm_id: str) -> list[dict[str, Any]]:
    """The local users linked to a CRM record."""
    items = (await (await client.get("/users?limit=500", headers=auth)).json())["items"]
    return [item for item in items if item["crm_id"] == crm_id]


async def test_a_contact_created_in_the_crm_appears_here_synced(live: Live) -> None:
    record = await person_creates(live.crm, name="Crm Person", email="crm.person@example.com")
    [user] = await eventually(lambda: users_with(live.backend, live.auth, record["crm_id"]))
    assert (user["name"], user["email"], user["sync_status"]) == ("Crm Person", "crm.person@example.com", "synced")


async def test_a_crm_created_contact_with_an_unlinked_local_users_email_is_linked_not_doubled(live: Live) -> None:
    client, auth = live.backend, live.auth
    await set_faults(live.crm, fail_next=3, fail_status=503)  # the local user's first push fails...
    local = await (await client.post("/users", json=JOHN, headers=auth)).json()
    await eventually(lambda: retrying(client, auth, local["id"]))
    record = await person_creates(live.crm)  # ...while a person adds the same contact in the CRM
    linked = await wait_status(client, auth, local["id"], "synced")
    assert linked["crm_id"] == record["crm_id"] and len(crm_records(live.crm_app)) == 1
    assert len((await (await client.get("/users", headers=auth)).json())["items"]) == 1


async def test_crm_creates_are_not_imported_when_the_setting_is_off(make_live: LiveFactory) -> None:
    live = await make_live(import_crm_creates=False)
    await person_creates(live.crm, email="not.here@example.com")
    stats = live.crm_app[mock_keys.stats]
    await eventually(lambda: stats.webhooks_delivered == 1)
    assert (await (await live.backend.get("/users", headers=live.auth)).json())["items"] == []


async def test_the_sweep_imports_a_crm_contact_no_webhook_told_us_about(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    record = await person_creates(crm, email="quiet@example.com")  # the backend gets no webhooks here
    assert (await backend.post("/reconcile", headers=auth)).status == 202
    [user] = await eventually(lambda: users_with(backend, auth, record["crm_id"]))
    assert user["sync_status"] == "synced"


async def test_a_full_reconcile_finds_every_record_the_crm_lost(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application
) -> None:
    ids = [(await synced_user(backend, auth, email=f"lost{i}@example.com"))["id"] for i in range(3)]
    store = crm_app[mock_keys.store]
    store.users.clear()  # the mock CRM restarted: it keeps nothing
    store._emails.clear()
    # A quick sweep sees nothing changed; only a full reconcile finds out.
    resp = await backend.post("/reconcile?full=true", headers=auth)
    assert resp.status == 202

    async def finished() -> dict[str, Any] | None:
        status = await (await backend.get("/reconcile", headers=auth)).json()
        return status if status["state"] == "done" else None

    status = await eventually(finished)
    assert status["counts"]["missing"] == 3
    for user_id in ids:
        user = await get_user(backend, auth, user_id)
        assert user["sync_status"] == "failed" and user["last_error"] == DELETED_IN_CRM
    resp = await backend.post("/users/sync-failed", headers=auth)  # a person re-creates them all
    assert (await resp.json())["queued"] == 3
    for user_id in ids:
        await wait_status(backend, auth, user_id, "synced")
    assert len(store.users) == 3


async def test_import_pulls_every_crm_record_and_resumes_where_it_stopped(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    for i in range(250):  # three pages of 100
        status, _ = await crm_call(crm, "POST", "/crm/users", json={**JOHN, "email": f"backfill{i}@example.com"})
        assert status == 201
    await set_faults(crm, fail_next=30, fail_status=503)  # the import's first page cannot be read...
    assert (await backend.post("/import", headers=auth)).status == 202

    async def state(wanted: str) -> dict[str, Any] | None:
        status = await (await backend.get("/import", headers=auth)).json()
        return status if status["state"] == wanted and (wanted != "running" or status.get("error")) else None

    stopped = await eventually(lambda: state("running"), timeout=30)
    assert stopped["error"]
    await set_faults(crm, fail_next=0)
    assert (await backend.post("/import", headers=auth)).status == 202  # ...and a second start resumes it
    done = await eventually(lambda: state("done"), timeout=30)
    assert done["counts"]["imported"] == 250
    listed = await (await backend.get("/users?limit=500", headers=auth)).json()
    assert len(listed["items"]) == 250 and {item["sync_status"] for item in listed["items"]} == {"synced"}


async def test_the_scripts_run_a_full_reconcile_and_an_import_with_progress(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    for i in range(120):
        assert (await crm_call(crm, "POST", "/crm/users", json={**JOHN, "email": f"script{i}@example.com"}))[0] == 201
    status, out, err = await run_script(backend, auth, "import_crm.sh")
    assert status == 0, err
    assert json.loads(out)["counts"]["imported"] == 120 and "import: done" in err
    status, out, err = await run_script(backend, auth, "reconcile_user.sh", "--full")
    assert status == 0, err
    assert json.loads(out)["state"] == "done" and "full_reconcile" in err
