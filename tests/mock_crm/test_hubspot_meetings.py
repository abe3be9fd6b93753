"""HubSpot fake meetings v3 and their v4 default associations to contacts."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.mock_crm.hubspot_helpers import AUTH, CONTACTS, MEETINGS, create, hubspot_error

ASSOC = "/crm/v4/objects"
MEETING = {"hs_timestamp": "2030-01-01T10:00:00Z", "hs_meeting_title": "Kick-off",
           "hs_meeting_start_time": "2030-01-01T10:00:00Z", "hs_meeting_end_time": "1893495600000"}  # fmt: skip


async def new_meeting(client: TestClient, **body: Any) -> dict[str, Any]:
    """Create a meeting and return the answer."""
    resp = await client.post(MEETINGS, json={"properties": MEETING, **body}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_meeting_create_read_update_delete(hubspot: TestClient) -> None:
    meeting = await new_meeting(hubspot)
    got = meeting["properties"]
    assert got["hs_meeting_title"] == "Kick-off" and got["hs_timestamp"] == "2030-01-01T10:00:00.000Z"
    assert got["hs_meeting_end_time"] == "2030-01-01T11:00:00.000Z"  # epoch milliseconds, read back as ISO
    path = f"{MEETINGS}/{meeting['id']}"
    resp = await hubspot.patch(path, json={"properties": {"hs_meeting_title": "Review"}}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    resp = await hubspot.get(f"{path}?properties=hs_meeting_title,hs_meeting_start_time", headers=AUTH)
    assert (await resp.json())["properties"]["hs_meeting_title"] == "Review"
    assert (await hubspot.delete(path, headers=AUTH)).status == 204
    await hubspot_error(await hubspot.get(path, headers=AUTH), 404, "OBJECT_NOT_FOUND")


async def test_meeting_needs_a_valid_hs_timestamp(hubspot: TestClient) -> None:
    for properties in ({"hs_meeting_title": "No time"}, {**MEETING, "hs_timestamp": "tomorrow"}):
        resp = await hubspot.post(MEETINGS, json={"properties": properties}, headers=AUTH)
        await hubspot_error(resp, 400, "VALIDATION_ERROR")


async def test_create_with_an_association_to_a_contact(hubspot: TestClient) -> None:
    contact = await create(hubspot, 1)
    types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]
    meeting = await new_meeting(hubspot, associations=[{"to": {"id": contact["id"]}, "types": types}])
    resp = await hubspot.get(f"{MEETINGS}/{meeting['id']}?associations=contacts", headers=AUTH)
    linked = (await resp.json())["associations"]["contacts"]["results"]
    assert [item["id"] for item in linked] == [contact["id"]]
    missing = [{"to": {"id": "999999"}, "types": types}]
    resp = await hubspot.post(MEETINGS, json={"properties": MEETING, "associations": missing}, headers=AUTH)
    await hubspot_error(resp, 400, "VALIDATION_ERROR")


async def test_v4_default_association_put_list_delete(hubspot: TestClient) -> None:
    contact, meeting = await create(hubspot, 1), await new_meeting(hubspot)
    path = f"{ASSOC}/meetings/{meeting['id']}/associations/default/contacts/{contact['id']}"
    resp = await hubspot.put(path, headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "COMPLETE"
    assert body["results"][0]["associationSpec"] == {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}
    assert (await hubspot.put(path, headers=AUTH)).status == 200  # idempotent
    resp = await hubspot.get(f"{ASSOC}/contacts/{contact['id']}/associations/meetings", headers=AUTH)
    assert [r["toObjectId"] for r in (await resp.json())["results"]] == [int(meeting["id"])]
    path = f"{ASSOC}/meetings/{meeting['id']}/associations/contacts/{contact['id']}"
    assert (await hubspot.delete(path, headers=AUTH)).status == 204
    resp = await hubspot.get(f"{ASSOC}/meetings/{meeting['id']}/associations/contacts", headers=AUTH)
    assert (await resp.json())["results"] == []


async def test_associations_to_missing_objects_or_other_types(hubspot: TestClient) -> None:
    meeting = await new_meeting(hubspot)
    path = f"{ASSOC}/meetings/{meeting['id']}/associations/default/contacts/424242"
    await hubspot_error(await hubspot.put(path, headers=AUTH), 404, "OBJECT_NOT_FOUND")
    path = f"{ASSOC}/meetings/{meeting['id']}/associations/default/deals/1"
    await hubspot_error(await hubspot.put(path, headers=AUTH), 400, "VALIDATION_ERROR")


async def test_deleting_a_contact_drops_its_associations(hubspot: TestClient) -> None:
    contact, meeting = await create(hubspot, 1), await new_meeting(hubspot)
    await hubspot.put(f"{ASSOC}/meetings/{meeting['id']}/associations/default/contacts/{contact['id']}", headers=AUTH)
    assert (await hubspot.delete(f"{CONTACTS}/{contact['id']}", headers=AUTH)).status == 204
    resp = await hubspot.get(f"{ASSOC}/meetings/{meeting['id']}/associations/contacts", headers=AUTH)
    assert (await resp.json())["results"] == []
