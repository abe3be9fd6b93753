"""Meetings: create, read, update, contacts, and their webhooks."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks import Webhook

from mock_crm import keys
from tests.mock_crm.helpers import WEBHOOK_SECRET, MakeClient, Receiver, bearer, eventually, person

MEETING = {"title": "Quarterly review", "starts_at": "2026-12-01T10:00:00+01:00", "ends_at": None}


async def test_create_get_patch_meeting(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.post("/crm/meetings", json=MEETING, headers=headers)
    assert resp.status == 201
    meeting = await resp.json()
    assert meeting["meeting_id"].startswith("MTG")
    assert meeting["starts_at"] == "2026-12-01T09:00:00.000000Z"
    assert meeting["ends_at"] is None and meeting["contact_ids"] == []
    url = f"/crm/meetings/{meeting['meeting_id']}"
    assert await (await mock.get(url, headers=headers)).json() == meeting
    resp = await mock.patch(url, json={"title": "Renamed", "ends_at": "2026-12-01T11:00:00Z"}, headers=headers)
    assert resp.status == 200
    patched = await resp.json()
    assert patched["title"] == "Renamed" and patched["ends_at"] == "2026-12-01T11:00:00.000000Z"
    assert patched["updated_at"] > meeting["updated_at"]
    assert (await mock.get("/crm/meetings/MTGnope", headers=headers)).status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x"},
        {"starts_at": "2026-12-01T10:00:00Z"},
        {**MEETING, "title": ""},
        {**MEETING, "starts_at": "2026-12-01T10:00:00"},
        {**MEETING, "starts_at": 1764583200},
        {**MEETING, "ends_at": "2026-12-01T08:00:00Z"},
        {**MEETING, "room": "A"},
    ],
)
async def test_invalid_meetings(mock: TestClient, headers: dict[str, str], body: dict) -> None:
    resp = await mock.post("/crm/meetings", json=body, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_data"


async def test_set_contacts(mock: TestClient, headers: dict[str, str]) -> None:
    users = [await (await mock.post("/crm/users", json=person(n), headers=headers)).json() for n in range(2)]
    ids = [u["crm_id"] for u in users]
    meeting = await (await mock.post("/crm/meetings", json=MEETING, headers=headers)).json()
    url = f"/crm/meetings/{meeting['meeting_id']}/contacts"
    resp = await mock.put(url, json={"crm_ids": [*ids, ids[0]]}, headers=headers)
    assert resp.status == 200
    assert (await resp.json())["contact_ids"] == ids
    resp = await mock.put(url, json={"crm_ids": [ids[0], "CRMghost"]}, headers=headers)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "invalid_data" and "CRMghost" in body["fields"]["crm_ids"]
    for bad in ({"crm_ids": "CRM1"}, {"crm_ids": [1]}, {"ids": []}):
        assert (await mock.put(url, json=bad, headers=headers)).status == 400
    stored = mock.app[keys.store].meetings[meeting["meeting_id"]]
    assert stored.contact_ids == ids


async def test_meeting_changes_emit_webhooks(make_mock: MakeClient, receiver: Receiver) -> None:
    client = await make_mock(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, webhook_backoff=0.01)
    auth = await bearer(client)
    user = await (await client.post("/crm/users", json=person(1), headers=auth)).json()
    meeting = await (await client.post("/crm/meetings", json=MEETING, headers=auth)).json()
    url = f"/crm/meetings/{meeting['meeting_id']}"
    await client.patch(url, json={"title": MEETING["title"]}, headers=auth)  # unchanged: no event
    await client.patch(url, json={"title": "Moved"}, headers=auth)
    final = await (await client.put(f"{url}/contacts", json={"crm_ids": [user["crm_id"]]}, headers=auth)).json()
    await eventually(lambda: len(receiver.hits) == 2)
    payloads = sorted(
        (Webhook(WEBHOOK_SECRET).verify(body, headers) for headers, body in receiver.hits),
        key=lambda payload: payload["timestamp"],
    )
    assert [p["updated_fields"] for p in payloads] == [{"title": "Moved"}, {"contact_ids": [user["crm_id"]]}]
    assert all(p["meeting_id"] == meeting["meeting_id"] and p["source"] == "api" for p in payloads)
    assert "crm_id" not in payloads[0]
    assert payloads[1]["timestamp"] == final["updated_at"]
