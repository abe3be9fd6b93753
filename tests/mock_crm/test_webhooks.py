"""Signed webhook delivery: Standard Webhooks signatures, retries, give-ups and clean shutdown."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient, TestServer, unused_port
from standardwebhooks import Webhook

from mock_crm import keys, sign
from mock_crm.app import create_app
from mock_crm.delivery import _retry_after
from tests.mock_crm.helpers import ALICE, WEBHOOK_SECRET, MakeClient, Receiver, bearer, config, eventually


async def _hooked(make_mock: MakeClient, receiver: Receiver, **overrides: Any) -> tuple[TestClient, dict[str, str]]:
    """A mock CRM that delivers webhooks to the receiver quickly, with a token for it."""
    settings = {"webhook_backoff": 0.01, "webhook_attempts": 3, **overrides}
    client = await make_mock(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, **settings)
    return client, await bearer(client)


def _verified(hit: tuple[dict[str, str], bytes]) -> dict[str, Any]:
    """Check a hit's signature with the standardwebhooks package and return its payload."""
    headers, body = hit
    return Webhook(WEBHOOK_SECRET).verify(body, headers)


async def test_patch_sends_signed_event(make_mock: MakeClient, receiver: Receiver) -> None:
    client, auth = await _hooked(make_mock, receiver)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    url = f"/crm/users/{created['crm_id']}"
    await client.patch(url, json={"name": ALICE["name"]}, headers=auth)  # no change, no event
    patched = await (await client.patch(url, json={"name": "Alice B", "phone": ALICE["phone"]}, headers=auth)).json()
    await eventually(lambda: receiver.hits)
    payload = _verified(receiver.hits[0])
    assert payload == {
        "event_id": payload["event_id"],
        "type": "contact.updated",
        "crm_id": created["crm_id"],
        "updated_fields": {"name": "Alice B"},
        "timestamp": patched["updated_at"],
        "source": "api",
    }
    assert payload["event_id"].startswith("evt_")
    assert receiver.hits[0][0]["webhook-id"] == payload["event_id"]
    await client.delete(url, headers=auth)
    stats = client.app[keys.stats]
    await eventually(lambda: stats.webhooks_delivered == 2)
    assert stats.webhooks_emitted == 2 and len(receiver.hits) == 2
    deleted = _verified(receiver.hits[1])
    assert (deleted["type"], deleted["crm_id"], deleted["updated_fields"], deleted["source"]) == (
        "contact.deleted",
        created["crm_id"],
        {},
        "api",
    )


async def test_a_person_creating_and_deleting_a_contact_is_announced(make_mock: MakeClient, receiver: Receiver) -> None:
    client, auth = await _hooked(make_mock, receiver)
    resp = await client.post("/crm/_admin/users", json=ALICE, headers=auth)
    assert resp.status == 201
    created = await resp.json()
    assert (await client.delete(f"/crm/_admin/users/{created['crm_id']}", headers=auth)).status == 204
    await eventually(lambda: len(receiver.hits) == 2)
    first, second = (_verified(hit) for hit in receiver.hits)
    assert (first["type"], first["source"], first["updated_fields"]) == (
        "contact.created",
        "crm",
        {k: ALICE[k] for k in ("name", "email", "phone")},
    )
    assert (second["type"], second["source"], second["crm_id"]) == ("contact.deleted", "crm", created["crm_id"])


async def test_admin_edit_is_source_crm(make_mock: MakeClient, receiver: Receiver) -> None:
    client, auth = await _hooked(make_mock, receiver)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    resp = await client.post(
        f"/crm/_admin/users/{created['crm_id']}/edit", json={"email": "alice@corp.example"}, headers=auth
    )
    assert resp.status == 200
    await eventually(lambda: receiver.hits)
    payload = _verified(receiver.hits[0])
    assert payload["source"] == "crm"
    assert payload["updated_fields"] == {"email": "alice@corp.example"}
    assert payload["timestamp"] == (await resp.json())["updated_at"]


async def test_retried_after_503_and_404_then_delivered(make_mock: MakeClient, receiver: Receiver) -> None:
    receiver.script[:] = [503, (429, {"Retry-After": "0"}), 404]
    client, auth = await _hooked(make_mock, receiver, webhook_attempts=4)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    await client.patch(f"/crm/users/{created['crm_id']}", json={"name": "Retry Me"}, headers=auth)
    stats = client.app[keys.stats]
    await eventually(lambda: stats.webhooks_delivered == 1)
    assert len(receiver.hits) == 4 and stats.webhook_attempts == 4
    assert len({headers["webhook-id"] for headers, _ in receiver.hits}) == 1
    assert all(_verified(hit)["updated_fields"] == {"name": "Retry Me"} for hit in receiver.hits)
    assert stats.deliveries[0].outcome == "delivered" and stats.deliveries[0].attempts == 4


async def test_400_is_not_retried(make_mock: MakeClient, receiver: Receiver) -> None:
    receiver.script[:] = [400]
    client, auth = await _hooked(make_mock, receiver)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    await client.patch(f"/crm/users/{created['crm_id']}", json={"name": "Nope"}, headers=auth)
    stats = client.app[keys.stats]
    await eventually(lambda: stats.webhooks_failed == 1)
    assert len(receiver.hits) == 1 and stats.deliveries[0].status == 400


async def test_gives_up_after_attempts(make_mock: MakeClient, receiver: Receiver) -> None:
    receiver.script[:] = [500, 502, 503]
    client, auth = await _hooked(make_mock, receiver, webhook_attempts=3)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    await client.patch(f"/crm/users/{created['crm_id']}", json={"name": "Down"}, headers=auth)
    stats = client.app[keys.stats]
    await eventually(lambda: stats.webhooks_failed == 1)
    assert len(receiver.hits) == 3 and stats.webhooks_delivered == 0


async def test_connection_errors_are_retried(make_mock: MakeClient) -> None:
    url = f"http://127.0.0.1:{unused_port()}/webhook"
    client = await make_mock(webhook_url=url, webhook_secret=WEBHOOK_SECRET, webhook_backoff=0.01, webhook_attempts=3)
    auth = await bearer(client)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    await client.patch(f"/crm/users/{created['crm_id']}", json={"name": "Nobody home"}, headers=auth)
    stats = client.app[keys.stats]
    await eventually(lambda: stats.webhooks_failed == 1)
    assert stats.webhook_attempts == 3 and stats.deliveries[0].status is None


async def test_shutdown_abandons_pending_deliveries(receiver: Receiver) -> None:
    receiver.hold = asyncio.Event()
    app = create_app(config(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        auth = await bearer(client)
        created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
        await client.patch(f"/crm/users/{created['crm_id']}", json={"name": "Pending"}, headers=auth)
        await eventually(lambda: receiver.hits)
    finally:
        await asyncio.wait_for(client.close(), timeout=2)
        receiver.hold.set()
    assert app[keys.stats].webhooks_pending == 1


async def test_no_webhook_url_means_no_events(mock: TestClient, headers: dict[str, str]) -> None:
    created = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
    await mock.patch(f"/crm/users/{created['crm_id']}", json={"name": "Quiet"}, headers=headers)
    assert mock.app[keys.stats].webhooks_emitted == 0
    assert mock.app[keys.webhooks].queue.empty()


def test_sign_matches_standardwebhooks() -> None:
    body = json.dumps({"event_id": "evt_1", "crm_id": "CRM1"}).encode()
    moment = datetime(2026, 11, 21, 18, 42, 37, tzinfo=UTC)
    expected = Webhook(WEBHOOK_SECRET).sign("evt_1", moment, body.decode())
    assert sign(WEBHOOK_SECRET, "evt_1", int(moment.timestamp()), body) == expected


def test_retry_after_parsing() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
