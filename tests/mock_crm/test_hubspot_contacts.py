"""HubSpot fake contacts v3: create, read, update, archive, batch upsert, and HubSpot's validation answers."""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from mock_crm.hubspot import keys
from tests.mock_crm.hubspot_helpers import AUTH, CONTACTS, create, hubspot_error, props, set_faults

UPSERT = f"{CONTACTS}/batch/upsert"


def upsert_input(n: int, **changes: str) -> dict[str, Any]:
    """One upsert input keyed by e-mail."""
    values = {**props(n), **changes}
    email = values.pop("email")
    return {"id": email, "idProperty": "email", "properties": values}


async def test_create_then_read_in_hubspots_shape(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    assert created["id"].isdigit() and created["archived"] is False
    assert created["properties"]["hs_object_id"] == created["id"]
    resp = await hubspot.get(f"{CONTACTS}/{created['id']}", headers=AUTH)
    body = await resp.json()
    assert set(body["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert body["properties"]["email"] == "person1@example.com"
    assert body["properties"]["lastmodifieddate"].endswith("Z") and body["createdAt"] and body["updatedAt"]


async def test_properties_query_picks_what_comes_back(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    resp = await hubspot.get(f"{CONTACTS}/{created['id']}?properties=phone,email", headers=AUTH)
    got = (await resp.json())["properties"]
    assert got["phone"] == "+44 20 7946 0001" and got["email"] == "person1@example.com"
    assert "firstname" not in got and "hs_object_id" in got and "lastmodifieddate" in got


async def test_duplicate_email_is_409_naming_the_existing_id(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    resp = await hubspot.post(CONTACTS, json={"properties": {"email": "PERSON1@example.com"}}, headers=AUTH)
    body = await hubspot_error(resp, 409, "CONFLICT")
    assert f"Contact already exists. Existing ID: {created['id']}" in body["message"]


async def test_patch_changes_the_given_properties_and_lastmodifieddate(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    resp = await hubspot.patch(f"{CONTACTS}/{created['id']}", json={"properties": {"phone": "+1 555 0100"}},
                               headers=AUTH)  # fmt: skip
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["properties"]["phone"] == "+1 555 0100"
    # Milliseconds, as HubSpot keeps them: two quick writes may share one value.
    assert body["properties"]["lastmodifieddate"] >= created["properties"]["lastmodifieddate"]
    other = await create(hubspot, 2)
    resp = await hubspot.patch(f"{CONTACTS}/{other['id']}", json={"properties": {"email": "person1@example.com"}},
                               headers=AUTH)  # fmt: skip
    await hubspot_error(resp, 409, "CONFLICT")


async def test_delete_archives_and_is_204_even_when_gone(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    assert (await hubspot.delete(f"{CONTACTS}/{created['id']}", headers=AUTH)).status == 204
    await hubspot_error(await hubspot.get(f"{CONTACTS}/{created['id']}", headers=AUTH), 404, "OBJECT_NOT_FOUND")
    assert (await hubspot.delete(f"{CONTACTS}/{created['id']}", headers=AUTH)).status == 204
    await create(hubspot, 1)  # the address is free again


async def test_read_by_email_with_id_property(hubspot: TestClient) -> None:
    created = await create(hubspot, 1)
    resp = await hubspot.get(f"{CONTACTS}/person1@example.com?idProperty=email", headers=AUTH)
    assert (await resp.json())["id"] == created["id"]


async def test_invalid_properties_are_400_validation_errors(hubspot: TestClient) -> None:
    bad = [
        ({"properties": {"favourite_colour": "blue"}}, "PROPERTY_DOESNT_EXIST"),
        ({"properties": {"hs_object_id": "5"}}, "READ_ONLY_VALUE"),
        ({"properties": {"email": "not-an-address"}}, "INVALID_EMAIL"),
        ({"properties": {"phone": 12345}}, "INVALID_TYPE"),
    ]
    for body, code in bad:
        error = await hubspot_error(await hubspot.post(CONTACTS, json=body, headers=AUTH), 400, "VALIDATION_ERROR")
        assert code in error["message"] and error["errors"][0]["code"] == code
    for raw in (b"{", b"[]", b'{"properties": "x"}'):
        resp = await hubspot.post(CONTACTS, data=raw, headers={**AUTH, "Content-Type": "application/json"})
        await hubspot_error(resp, 400, "VALIDATION_ERROR")
    assert hubspot.app is not None and not hubspot.app[keys.store].contacts


async def test_batch_upsert_creates_then_updates_by_email(hubspot: TestClient) -> None:
    resp = await hubspot.post(UPSERT, json={"inputs": [upsert_input(1), upsert_input(2)]}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    first = await resp.json()
    assert first["status"] == "COMPLETE" and first["startedAt"] and first["completedAt"]
    assert [r["new"] for r in first["results"]] == [True, True]
    resp = await hubspot.post(UPSERT, json={"inputs": [upsert_input(1, phone="+1 555 0199")]}, headers=AUTH)
    second = await resp.json()
    assert second["results"][0]["new"] is False and second["results"][0]["id"] == first["results"][0]["id"]
    assert second["results"][0]["properties"]["phone"] == "+1 555 0199"
    assert hubspot.app is not None and len(hubspot.app[keys.store].contacts) == 2


async def test_batch_upsert_partial_failure_is_207_with_errors(hubspot: TestClient) -> None:
    inputs = [upsert_input(1), {"id": "bad-address", "idProperty": "email", "properties": {}}, upsert_input(3)]
    resp = await hubspot.post(UPSERT, json={"inputs": inputs}, headers=AUTH)
    assert resp.status == 207, await resp.text()
    body = await resp.json()
    assert len(body["results"]) == 2 and body["numErrors"] == 1
    error = body["errors"][0]
    assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
    assert error["context"] == {"ids": ["bad-address"]}


async def test_batch_upsert_rejects_bad_batches_whole(hubspot: TestClient) -> None:
    twice = {"inputs": [upsert_input(1), upsert_input(1)]}
    too_many = {"inputs": [upsert_input(n) for n in range(101)]}
    for body in (twice, too_many, {"inputs": []}, {"inputs": [{"properties": {}}]}):
        await hubspot_error(await hubspot.post(UPSERT, json=body, headers=AUTH), 400, "VALIDATION_ERROR")
    assert hubspot.app is not None and not hubspot.app[keys.store].contacts


async def test_upsert_whose_reply_was_lost_is_applied_and_repeats_without_a_duplicate(hubspot: TestClient) -> None:
    await set_faults(hubspot, lost_reply_rate=1)
    for _ in range(3):
        resp = None
        with contextlib.suppress(aiohttp.ClientError):  # a dropped connection is one way a reply is lost
            resp = await hubspot.post(UPSERT, json={"inputs": [upsert_input(1)]}, headers=AUTH)
        assert resp is None or resp.status == 502
    await set_faults(hubspot, lost_reply_rate=0)
    resp = await hubspot.post(UPSERT, json={"inputs": [upsert_input(1)]}, headers=AUTH)
    assert resp.status == 200 and (await resp.json())["results"][0]["new"] is False
    assert hubspot.app is not None and len(hubspot.app[keys.store].contacts) == 1
