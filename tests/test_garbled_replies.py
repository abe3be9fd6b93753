"""A CRM reply that is not JSON, or JSON of the wrong shape: named for what it is, and retried until synced."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config

from .conftest import JOHN, crm_records, get_user, set_faults, sign_up
from .polling import eventually

# The mock garbles replies in this order: text, the record in an array, the record in a {"data": ...} envelope.
GARBLED = [
    "The CRM answered the create with a body that is not JSON.",
    "The CRM answered with a JSON array where a contact object was expected.",
    "The CRM answered with a contact record that lacks crm_id.",
]


async def test_garbled_replies_are_transient_named_in_last_error_and_end_synced(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    # Half a second between job retries, so that each message stays in last_error long enough to be read.
    client = await aiohttp_client(create_app(make_config(job_backoff=(0.5,) * 5)))
    auth = await sign_up(client)
    await set_faults(crm, garble_next=3)
    resp = await client.post("/users", json=JOHN, headers=auth)
    user_id = (await resp.json())["id"]
    seen: list[str] = []

    async def read_errors() -> dict[str, Any] | None:
        user = await get_user(client, auth, user_id)
        if user["sync_status"] == "failed":
            assert user["next_retry_at"] is not None, user  # retried with backoff, never final
            if not seen or seen[-1] != user["last_error"]:
                seen.append(user["last_error"])
        return user if user["sync_status"] == "synced" else None

    synced = await eventually(read_errors, timeout=15)
    assert seen == GARBLED
    assert synced["last_error"] is None and synced["crm_id"]
    # Each retry of the create carried the same Idempotency-Key: one record, not four.
    assert list(crm_records(crm_app)) == [synced["crm_id"]]
