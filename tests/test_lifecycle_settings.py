"""The settings of a contact's life (CRMSYNC_ON_CRM_DELETE, _IMPORT_CRM_CREATES, _FULL_RECONCILE_INTERVAL)
read from the environment, and each one's effect on the paths a webhook does not cover."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config, ConfigError
from crmsync.keys import db_key

from .conftest import (
    CLIENT_SECRET,
    JOHN,
    JWT_SECRET,
    WEBHOOK_SECRET,
    crm_call,
    crm_records,
    eventually,
    retrying,
    set_faults,
    sign_up,
    synced_user,
    wait_status,
)

SECRETS = {"CRMSYNC_CRM_CLIENT_SECRET": CLIENT_SECRET, "CRMSYNC_JWT_SECRET": JWT_SECRET,
           "CRMSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET}  # fmt: skip


def test_the_defaults_unlink_import_and_reconcile_daily() -> None:
    config = Config.from_env(SECRETS)
    assert (config.on_crm_delete, config.import_crm_creates, config.full_reconcile_interval) == ("unlink", True, 86400)


@pytest.mark.parametrize(
    ("env", "read"),
    [
        ({"CRMSYNC_ON_CRM_DELETE": "delete"}, ("delete", True, 86400)),
        ({"CRMSYNC_ON_CRM_DELETE": "UNLINK"}, ("unlink", True, 86400)),
        ({"CRMSYNC_IMPORT_CRM_CREATES": "false"}, ("unlink", False, 86400)),
        ({"CRMSYNC_IMPORT_CRM_CREATES": "true"}, ("unlink", True, 86400)),
        ({"CRMSYNC_FULL_RECONCILE_INTERVAL": "0"}, ("unlink", True, 0)),
        ({"CRMSYNC_FULL_RECONCILE_INTERVAL": "3600"}, ("unlink", True, 3600)),
    ],
)
def test_the_settings_are_read(env: dict[str, str], read: tuple[str, bool, float]) -> None:
    config = Config.from_env({**SECRETS, **env})
    assert (config.on_crm_delete, config.import_crm_creates, config.full_reconcile_interval) == read


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"CRMSYNC_ON_CRM_DELETE": "ignore"}, "CRMSYNC_ON_CRM_DELETE must be one of"),
        ({"CRMSYNC_IMPORT_CRM_CREATES": "maybe"}, "CRMSYNC_IMPORT_CRM_CREATES"),
        ({"CRMSYNC_FULL_RECONCILE_INTERVAL": "-5"}, "CRMSYNC_FULL_RECONCILE_INTERVAL must be at least 0"),
    ],
)
def test_a_bad_setting_is_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Config.from_env({**SECRETS, **env})


async def test_with_on_crm_delete_delete_a_push_that_finds_the_record_gone_deletes_the_user(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(on_crm_delete="delete")))
    auth = await sign_up(client)
    user = await synced_user(client, auth)
    assert (await crm_call(crm, "DELETE", f"/crm/users/{user['crm_id']}"))[0] == 204  # no webhook reaches us
    assert (await client.patch(f"/users/{user['id']}", json={"name": "Edited"}, headers=auth)).status == 200
    await eventually(lambda: _gone(client, auth, user["id"]))
    assert crm_records(crm.app) == {}  # never created again


async def _gone(client: TestClient, auth: dict[str, str], user_id: str) -> bool:
    return (await client.get(f"/users/{user_id}", headers=auth)).status == 404


async def _sweep_done(client: TestClient, auth: dict[str, str]) -> None:
    """Start a sweep and wait until its page is applied (the checkpoint moves in the page's transaction)."""
    assert (await client.post("/reconcile", headers=auth)).status == 202
    db = client.app[db_key]
    await eventually(lambda: db.fetchval("SELECT value FROM checkpoints WHERE name = 'crm_users_updated_since'"))


async def test_with_import_off_the_sweep_leaves_crm_created_contacts_out(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(import_crm_creates=False)))
    auth = await sign_up(client)
    status, _ = await crm_call(crm, "POST", "/crm/_admin/users", json={**JOHN, "email": "crm.only@example.com"})
    assert status == 201
    mine = await synced_user(client, auth)  # the sweep reads both records: one known, one not
    await _sweep_done(client, auth)
    items = (await (await client.get("/users", headers=auth)).json())["items"]
    assert [item["id"] for item in items] == [mine["id"]]


async def test_with_import_off_a_backfill_a_person_asks_for_still_imports(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    """CRMSYNC_IMPORT_CRM_CREATES=false keeps contacts made in the CRM from appearing by themselves; POST
    /import is a person asking for every CRM record, and gets them."""
    client = await aiohttp_client(create_app(make_config(import_crm_creates=False)))
    auth = await sign_up(client)
    status, _ = await crm_call(crm, "POST", "/crm/_admin/users", json={**JOHN, "email": "crm.only@example.com"})
    assert status == 201
    assert (await client.post("/import", headers=auth)).status == 202

    async def imported() -> list[dict[str, Any]]:
        return (await (await client.get("/users", headers=auth)).json())["items"]

    [item] = await eventually(imported, 30, interval=0.1)
    assert item["email"] == "crm.only@example.com" and item["sync_status"] == "synced"


async def test_the_sweep_links_an_unlinked_local_user_with_the_same_email_not_doubled(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await set_faults(crm, fail_next=3, fail_status=503)  # the local user's first push fails...
    local = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    await eventually(lambda: retrying(backend, auth, local["id"]))
    status, record = await crm_call(crm, "POST", "/crm/_admin/users", json=JOHN)  # ...a person adds it there
    assert status == 201
    assert (await backend.post("/reconcile", headers=auth)).status == 202  # no webhook: the sweep finds it
    linked = await wait_status(backend, auth, local["id"], "synced")
    assert linked["crm_id"] == record["crm_id"] and len(crm_records(crm.app)) == 1
    assert len((await (await backend.get("/users", headers=auth)).json())["items"]) == 1


@pytest.mark.parametrize(("interval", "timers"), [(0, 0), (86400, 1)])
async def test_a_full_reconcile_interval_of_0_turns_the_timer_off(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    interval: float,
    timers: int,
) -> None:
    await aiohttp_client(create_app(make_config(full_reconcile_interval=interval)))
    running = [task for task in asyncio.all_tasks() if task.get_name() == "full-reconcile-timer" and not task.done()]
    assert len(running) == timers
