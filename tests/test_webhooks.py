"""POST /webhook: signatures, idempotency, staleness, ordering, validation, and no echo loops."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks import Webhook

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.signatures import decode_secret, verify
from crmsync.timeutil import isoformat, utcnow
from mock_crm import keys as mock_keys
from mock_crm.webhooks import sign as mock_sign

from .conftest import (
    JOHN,
    WEBHOOK_SECRET,
    Live,
    crm_call,
    eventually,
    get_user,
    post_webhook,
    sign_up,
    sign_webhook,
    synced_user,
    wait_status,
)  # fmt: skip


def _at(seconds: float) -> str:
    """A timestamp this many seconds from now (webhooks may not be more than 5 minutes ahead)."""
    return isoformat(utcnow() + timedelta(seconds=seconds))


def _event(crm_id: str, timestamp: str | None = None, **fields: str) -> dict[str, Any]:
    return {"event_id": f"evt_{uuid.uuid4().hex}", "crm_id": crm_id, "updated_fields": fields,
            "timestamp": timestamp or _at(1), "source": "crm"}  # fmt: skip


async def _history_types(client: TestClient, auth: dict[str, str], user_id: str) -> list[str]:
    resp = await client.get(f"/users/{user_id}/history", headers=auth)
    return [item["type"] for item in (await resp.json())["items"]]


async def test_a_signed_webhook_updates_the_user(backend: TestClient, auth: dict[str, str]) -> None:
    user = await synced_user(backend, auth)
    status, body = await post_webhook(backend, _event(user["crm_id"], phone="987-654-3210"))
    assert status == 200 and body["result"] == "applied"
    assert body["changed_fields"] == {"phone": "987-654-3210"}
    updated = await get_user(backend, auth, user["id"])
    assert updated["phone"] == "987-654-3210" and updated["sync_status"] == "synced"
    assert "webhook_event" in await _history_types(backend, auth, user["id"])


async def test_the_seed_payload_without_event_id_or_source_is_accepted(
    backend: TestClient, auth: dict[str, str]
) -> None:
    user = await synced_user(backend, auth)
    seed = {"crm_id": user["crm_id"], "updated_fields": {"phone": "987-654-3210"}, "timestamp": _at(1)}
    status, body = await post_webhook(backend, seed)
    assert status == 200 and body["result"] == "applied"


@pytest.mark.parametrize(
    "tamper",
    ["bad signature", "missing signature", "missing id", "missing timestamp", "expired", "future", "wrong secret",
     "body changed"],
)  # fmt: skip
async def test_unverified_webhooks_are_401_and_change_nothing(
    backend: TestClient, auth: dict[str, str], tamper: str
) -> None:
    user = await synced_user(backend, auth)
    payload = _event(user["crm_id"], phone="987-654-3210")
    other_secret = "whsec_" + base64.b64encode(b"some-other-key-0123456789abcdef").decode()
    options = {"expired": {"age": 301}, "future": {"age": -301}, "wrong secret": {"secret": other_secret}}
    body, headers = sign_webhook(payload, **options.get(tamper, {}))
    if tamper == "bad signature":
        headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif tamper.startswith("missing"):
        headers.pop({"missing signature": "webhook-signature", "missing id": "webhook-id",
                     "missing timestamp": "webhook-timestamp"}[tamper])  # fmt: skip
    elif tamper == "body changed":
        body = body.replace(b"987-654-3210", b"000-000-0000")
    resp = await backend.post("/webhook", data=body, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"
    assert (await get_user(backend, auth, user["id"]))["phone"] == JOHN["phone"]


async def test_a_rotated_secret_accepts_old_and_new(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config]
) -> None:
    new_secret = "whsec_" + base64.b64encode(b"the-new-key-after-rotation-0123").decode()
    client = await aiohttp_client(create_app(make_config(webhook_secrets=(new_secret, WEBHOOK_SECRET))))
    auth = await sign_up(client)
    user = await synced_user(client, auth)
    status, _ = await post_webhook(client, _event(user["crm_id"], _at(1), phone="111-222-3333"))
    assert status == 200
    status, _ = await post_webhook(client, _event(user["crm_id"], _at(2), phone="444-555-6666"), secret=new_secret)
    assert status == 200
    assert (await get_user(client, auth, user["id"]))["phone"] == "444-555-6666"


def test_the_mocks_signatures_pass_both_verifiers() -> None:
    body = b'{"crm_id": "CRM1", "updated_fields": {"phone": "1234567"}, "timestamp": "2099-01-01T00:00:00Z"}'
    stamp = int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(stamp),
               "webhook-signature": mock_sign(WEBHOOK_SECRET, "evt_1", stamp, body)}  # fmt: skip
    assert Webhook(WEBHOOK_SECRET).verify(body, headers)["crm_id"] == "CRM1"
    assert verify([decode_secret(WEBHOOK_SECRET)], headers, body) == "evt_1"


async def test_a_redelivered_event_is_applied_once(backend: TestClient, auth: dict[str, str]) -> None:
    user = await synced_user(backend, auth)
    event = _event(user["crm_id"], phone="987-654-3210")
    assert (await post_webhook(backend, event))[1]["result"] == "applied"
    # Meanwhile the CRM changes the phone again; a replay of the first event must not undo it.
    assert (await post_webhook(backend, _event(user["crm_id"], _at(3), phone="555-555-5555")))[0] == 200
    status, body = await post_webhook(backend, event)
    assert status == 200 and body["result"] == "duplicate"
    assert (await get_user(backend, auth, user["id"]))["phone"] == "555-555-5555"
    assert (await _history_types(backend, auth, user["id"])).count("webhook_event") == 2


async def test_stale_and_out_of_order_events_converge_on_the_newest(backend: TestClient, auth: dict[str, str]) -> None:
    user = await synced_user(backend, auth)
    newer = _event(user["crm_id"], _at(2), phone="222-222-2222")
    older = _event(user["crm_id"], _at(1), phone="111-111-1111", name="Johnny Smith")
    assert (await post_webhook(backend, newer))[1]["result"] == "applied"
    status, body = await post_webhook(backend, older)
    # The older event's phone is stale, but its name is newer than anything we know for that field.
    assert status == 200 and body["changed_fields"] == {"name": "Johnny Smith"}
    current = await get_user(backend, auth, user["id"])
    assert current["phone"] == "222-222-2222" and current["name"] == "Johnny Smith"
    older_than_sync = _event(user["crm_id"], "2000-01-01T00:00:00Z", phone="000-000-0000")
    status, body = await post_webhook(backend, older_than_sync)
    assert status == 200 and body["result"] == "stale"
    assert (await get_user(backend, auth, user["id"]))["phone"] == "222-222-2222"


async def test_unknown_crm_id_is_404_then_applied_on_redelivery(
    backend: TestClient, auth: dict[str, str], crm: Any
) -> None:
    status, record = await crm_call(crm, "POST", "/crm/users", json=JOHN)
    event = _event(record["crm_id"], phone="987-654-3210")
    status, body = await post_webhook(backend, event)
    assert status == 404 and body["error"] == "not_found"
    user = await synced_user(backend, auth)  # links to the CRM record by its email
    assert user["crm_id"] == record["crm_id"]
    status, body = await post_webhook(backend, event)
    assert status == 200 and body["result"] == "applied"
    assert (await get_user(backend, auth, user["id"]))["phone"] == "987-654-3210"


@pytest.mark.parametrize(
    "fields",
    [{"phone": "12"}, {"email": "nope"}, {"name": ""}, {"crm_id": "x"}, {}, {"phone": 1234567}],
)
async def test_invalid_fields_are_422_and_change_nothing(
    backend: TestClient, auth: dict[str, str], fields: dict
) -> None:
    user = await synced_user(backend, auth)
    status, body = await post_webhook(backend, {**_event(user["crm_id"]), "updated_fields": fields})
    assert status == 422 and body["error"] == "validation_failed"
    assert await get_user(backend, auth, user["id"]) == user


@pytest.mark.parametrize(
    "payload", [[1, 2], {"crm_id": 5, "updated_fields": {}, "timestamp": "x"}, {"updated_fields": "phone=1"}]
)
async def test_malformed_payloads_are_rejected(backend: TestClient, payload: Any) -> None:
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    headers = {"webhook-id": "evt_raw", "webhook-timestamp": str(stamp),
               "webhook-signature": mock_sign(WEBHOOK_SECRET, "evt_raw", stamp, body)}  # fmt: skip
    resp = await backend.post("/webhook", data=body, headers=headers)
    assert resp.status in (400, 422)
    assert set(await resp.json()) >= {"error", "message"}


async def test_crm_side_edit_arrives_by_webhook(live: Live) -> None:
    user = await synced_user(live.backend, live.auth)
    status, _ = await crm_call(
        live.crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit", json={"phone": "987-654-3210"}
    )
    assert status == 200

    async def updated() -> bool:
        return (await get_user(live.backend, live.auth, user["id"]))["phone"] == "987-654-3210"

    await eventually(updated)


async def test_our_own_writes_do_not_echo_back(live: Live) -> None:
    user = await synced_user(live.backend, live.auth)
    stats = live.crm_app[mock_keys.stats]
    resp = await live.backend.patch(f"/users/{user['id']}", json={"phone": "222-333-4444"}, headers=live.auth)
    assert resp.status == 200
    await wait_status(live.backend, live.auth, user["id"], "synced")
    await eventually(lambda: stats.webhooks_delivered >= 1)
    await eventually(lambda: stats.webhooks_pending == 0)
    assert stats.calls["PATCH /crm/users/{crm_id}"] == 1
    assert stats.webhooks_emitted == 1
    final = await get_user(live.backend, live.auth, user["id"])
    assert final["phone"] == "222-333-4444" and final["sync_status"] == "synced"
