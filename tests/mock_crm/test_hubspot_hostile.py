"""Hostile input to every route of the HubSpot fake: always HubSpot's error body, never a 500."""

from __future__ import annotations

import itertools
from collections import Counter

from aiohttp.test_utils import TestClient

from mock_crm.hubspot import keys
from mock_crm.hubspot.app import create_app
from tests.mock_crm.hubspot_helpers import AUTH, CONTACTS, hubspot_config, props

BODIES: list[bytes] = [
    b"",
    b"not json",
    b"null",
    b"[]",
    b'"text"',
    b"1e999",
    b"[" * 5000 + b"]" * 5000,
    b'{"properties": null}',
    b'{"properties": {"email": ["a"]}}',
    b'{"properties": {"hs_timestamp": "99999999999999999999"}}',
    b'{"properties": {"hs_timestamp": "0001-01-01T00:00:00+01:00"}}',
    b'{"inputs": [{"id": 5, "properties": {}}]}',
    b'{"inputs": [{"id": "x", "idProperty": "nope", "properties": {}}]}',
    b'{"inputs": [{"id": "x", "idProperty": "email", "properties": {"email": "y@example.com"}}]}',
    b'{"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "IN", "values": ["x"]}]}]}',
    b'{"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "LT", "value": "abc"}]}]}',
    b'{"filterGroups": "all"}',
    b'{"sorts": [{"propertyName": 1}]}',
    b'{"after": "\xd9\xa3"}',
    b'{"limit": true}',
    b'{"associations": [{"to": {"id": true}, "types": [{}]}], "properties": {"hs_timestamp": "1"}}',
    b'{"rate_max": 0, "daily_exhausted": "yes"}',
]


async def test_no_route_answers_a_hostile_body_with_a_500(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(create_app(hubspot_config(search_rate=1000, rate_max=100_000)))
    assert client.app is not None
    app, serial, seen = client.app, itertools.count(), Counter[int]()

    def ids() -> dict[str, str]:
        """A live contact and meeting for the {id} routes (a DELETE or a fault change may have gone before)."""
        store, faults = app[keys.store], app[keys.faults]
        faults.rate_max, faults.daily_max, faults.daily_exhausted = 100_000, 1_000_000, False
        contact = next(iter(store.contacts), None) or store.create("contacts", props(next(serial))).id
        meeting = next(iter(store.meetings), None) or store.create("meetings", {"hs_timestamp": "1"}).id
        return {"contact_id": contact, "meeting_id": meeting, "from_type": "meetings", "from_id": meeting,
                "to_type": "contacts", "to_id": contact}  # fmt: skip

    routes = [(r.method, r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None]  # fmt: skip
    for (method, path), body in itertools.product(routes, BODIES):
        url = path.format(**ids())
        resp = await client.request(method, url, data=body, headers={**AUTH, "Content-Type": "application/json"})
        seen[resp.status] += 1
        assert resp.status < 500, (method, url, body[:80], await resp.text())
        if resp.status >= 400:
            payload = await resp.json(content_type=None)
            assert {"message", "correlationId"} <= payload.keys(), (method, url, payload)
    assert seen.total() == len(routes) * len(BODIES) and seen[400] > len(BODIES) * 10, seen


async def test_odd_forms_and_queries(hubspot: TestClient) -> None:
    for data, ctype in ((b"grant_type=refresh_token", "application/x-www-form-urlencoded; charset=nonsense"),
                        (b"{}", "application/json"), (b"\xff\xfe", "application/x-www-form-urlencoded")):  # fmt: skip
        resp = await hubspot.post("/oauth/v1/token", data=data, headers={"Content-Type": ctype})
        assert resp.status == 400, await resp.text()
    for query in ("?properties=", "?idProperty=phone", "?properties=" + "x," * 500, "?idProperty=email"):
        resp = await hubspot.get(f"{CONTACTS}/1{query}", headers=AUTH)
        assert resp.status in (400, 404), await resp.text()
