"""HubSpot fake webhooks: v3 signatures (with HubSpot's published test vector), batches, events, retries."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from mock_crm.hubspot.signing import sign_v3, verify_v3
from tests.mock_crm.conftest import MakeReceiver
from tests.mock_crm.helpers import MakeClient, Receiver, eventually
from tests.mock_crm.hubspot_helpers import APP_SECRET, AUTH, CONTACTS, create, props

# The v3 example published in HubSpot's Python client (tests/spec/utils/test_signature.py).
VECTOR = {"secret": "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "method": "POST", "body": "{'example_field':'example_value'}",
          "uri": "https://www.example.com/webhook_uri", "timestamp": 15000000,
          "signature": "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="}  # fmt: skip


def test_published_test_vector_verifies_with_the_fakes_signer() -> None:
    v = VECTOR
    assert sign_v3(v["secret"], v["method"], v["uri"], v["body"], v["timestamp"]) == v["signature"]
    assert verify_v3(v["secret"], v["method"], v["uri"], v["body"], v["timestamp"], v["signature"])
    assert not verify_v3(v["secret"], v["method"], v["uri"], v["body"] + " ", v["timestamp"], v["signature"])


async def fake_with(make_hubspot: MakeClient, receiver: Receiver, **overrides: Any) -> TestClient:
    """A fake delivering webhooks to the receiver quickly."""
    return await make_hubspot(webhook_url=receiver.url, webhook_backoff=0.01, **overrides)


def batches(receiver: Receiver) -> list[list[dict[str, Any]]]:
    """Each hit's body, checking its v3 signature and timestamp first."""
    found = []
    for headers, body in receiver.hits:
        timestamp = headers["X-HubSpot-Request-Timestamp"]
        assert abs(int(timestamp) - time.time() * 1000) < 300_000
        assert verify_v3(APP_SECRET, "POST", receiver.url, body.decode(), timestamp, headers["X-HubSpot-Signature-v3"])
        found.append(json.loads(body))
    return found


async def test_person_create_edit_delete_send_signed_events(make_hubspot: MakeClient, receiver: Receiver) -> None:
    client = await fake_with(make_hubspot, receiver)
    resp = await client.post("/_fake/contacts", json={"properties": props(1)}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    contact_id = (await resp.json())["id"]
    await eventually(lambda: len(receiver.hits) == 1)
    resp = await client.patch(f"/_fake/contacts/{contact_id}", json={"properties": {"phone": "1", "lastname": "X"}},
                              headers=AUTH)  # fmt: skip
    assert resp.status == 200
    await eventually(lambda: len(receiver.hits) == 2)
    assert (await client.delete(f"/_fake/contacts/{contact_id}", headers=AUTH)).status == 204
    await eventually(lambda: len(receiver.hits) == 3)
    created, changed, deleted = batches(receiver)
    assert [e["subscriptionType"] for e in created] == ["contact.creation"]
    assert {(e["propertyName"], e["propertyValue"]) for e in changed} == {("phone", "1"), ("lastname", "X")}
    assert [e["subscriptionType"] for e in deleted] == ["contact.deletion"]
    for event in created + changed + deleted:
        assert event["objectId"] == int(contact_id) and event["changeSource"] == "CRM_UI"
        assert event["attemptNumber"] == 0 and event["portalId"] and event["subscriptionId"]
        assert isinstance(event["eventId"], int) and isinstance(event["occurredAt"], int)
    assert len({e["eventId"] for e in created + changed + deleted}) == 4


async def test_api_writes_send_events_too_with_change_source_integration(
    make_hubspot: MakeClient, receiver: Receiver
) -> None:
    client = await fake_with(make_hubspot, receiver)
    await create(client, 1)
    await eventually(lambda: receiver.hits)
    assert batches(receiver)[0][0]["changeSource"] == "INTEGRATION"


async def test_events_of_one_request_go_in_batches_of_at_most_100(make_hubspot: MakeClient, receiver: Receiver) -> None:
    client = await fake_with(make_hubspot, receiver)
    for start in (0, 100):
        inputs = [{"id": f"p{n}@example.com", "idProperty": "email", "properties": {"firstname": f"P{n}"}}
                  for n in range(start, start + 75)]  # fmt: skip
        resp = await client.post(f"{CONTACTS}/batch/upsert", json={"inputs": inputs}, headers=AUTH)
        assert resp.status == 200
    await eventually(lambda: sum(len(json.loads(body)) for _, body in receiver.hits) == 150)
    assert sorted(len(batch) for batch in batches(receiver)) == [75, 75]
    inputs = [{"id": f"p{n}@example.com", "idProperty": "email", "properties": {"lastname": "B"}} for n in range(75)]
    inputs += [{"id": f"p{n}@example.com", "idProperty": "email", "properties": {"lastname": "B"}}
               for n in range(100, 125)]  # fmt: skip
    assert (await client.post(f"{CONTACTS}/batch/upsert", json={"inputs": inputs}, headers=AUTH)).status == 200
    await eventually(lambda: len(receiver.hits) == 3)  # 100 changes: exactly one more batch
    assert len(batches(receiver)[2]) == 100


async def test_a_failed_delivery_is_retried_with_the_next_attempt_number(
    make_hubspot: MakeClient, make_receiver: MakeReceiver
) -> None:
    receiver = await make_receiver()
    receiver.script = [500, 503]
    client = await fake_with(make_hubspot, receiver)
    await create(client, 1)
    await eventually(lambda: len(receiver.hits) == 3)
    attempts = batches(receiver)
    assert [batch[0]["attemptNumber"] for batch in attempts] == [0, 1, 2]
    assert len({batch[0]["eventId"] for batch in attempts}) == 1

    async def delivered() -> bool:
        stats = await (await client.get("/_fake/stats", headers=AUTH)).json()
        return stats["webhooks_delivered"] == 1 and stats["deliveries"][0]["attempts"] == 3

    await eventually(delivered)


async def test_no_webhooks_without_a_url(hubspot: TestClient) -> None:
    await create(hubspot, 1)
    stats = await (await hubspot.get("/_fake/stats", headers=AUTH)).json()
    assert stats["webhook_events"] == 0 and stats["webhooks_emitted"] == 0 and stats["contacts"] == 1
