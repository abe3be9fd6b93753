"""HubSpot fake search: lastmodifieddate filters, ascending sorts, `after` paging, total, the 10,000 cap, 5 req/s."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from mock_crm.hubspot import keys
from tests.mock_crm.hubspot_helpers import AUTH, CONTACTS, create, hubspot_error, props

SEARCH = f"{CONTACTS}/search"


def since(value: str, limit: int = 200, after: str | None = None) -> dict[str, Any]:
    """The reconcile query: changed at or after value, oldest first."""
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": value}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "firstname", "lastname", "phone", "lastmodifieddate"],
        "limit": limit,
    }
    if after is not None:
        body["after"] = after
    return body


async def test_filter_on_lastmodifieddate_sorted_ascending_in_pages(hubspot: TestClient) -> None:
    created = [await create(hubspot, n) for n in range(5)]
    checkpoint = created[2]["properties"]["lastmodifieddate"]
    seen, after, totals = [], None, set()
    while True:
        resp = await hubspot.post(SEARCH, json=since(checkpoint, limit=1, after=after), headers=AUTH)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        totals.add(page["total"])
        seen += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    stamps = [r["properties"]["lastmodifieddate"] for r in seen]
    assert stamps == sorted(stamps) and all(s >= checkpoint for s in stamps)
    assert {r["id"] for r in created[2:]} <= {r["id"] for r in seen}
    assert totals == {len(seen)}
    assert "phone" in seen[0]["properties"]


async def test_epoch_milliseconds_work_as_filter_values(hubspot: TestClient) -> None:
    await create(hubspot, 1)
    resp = await hubspot.post(SEARCH, json=since("0"), headers=AUTH)
    assert (await resp.json())["total"] == 1
    resp = await hubspot.post(SEARCH, json=since("99999999999999"), headers=AUTH)
    assert (await resp.json())["total"] == 0


async def test_limits_of_a_search_body_are_400s(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    hubspot: TestClient = await make_hubspot(search_rate=100)
    yesterday = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "yesterday"}
    bad = [
        since("0", limit=201),
        {**since("0"), "sorts": ["email", "phone"]},
        {**since("0"), "filterGroups": [{"filters": [{"propertyName": "email", "operator": "ROUGHLY", "value": "x"}]}]},
        {**since("0"), "filterGroups": [{"filters": [yesterday]}]},
        {**since("0"), "unknown": 1},
        {**since("0"), "after": "abc"},
    ]
    for body in bad:
        await hubspot_error(await hubspot.post(SEARCH, json=body, headers=AUTH), 400, "VALIDATION_ERROR")


async def test_results_stop_at_10000_though_total_counts_all(hubspot: TestClient) -> None:
    assert hubspot.app is not None
    store = hubspot.app[keys.store]
    for n in range(10_050):
        store.create("contacts", props(n))
    resp = await hubspot.post(SEARCH, json=since("0", after="9800"), headers=AUTH)
    page = await resp.json()
    assert page["total"] == 10_050 and len(page["results"]) == 200 and "paging" not in page
    resp = await hubspot.post(SEARCH, json=since("0", after="10000"), headers=AUTH)
    await hubspot_error(resp, 400, "VALIDATION_ERROR")


async def test_search_has_its_own_per_second_limit_and_no_rate_headers(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await make_hubspot(search_rate=2)
    for _ in range(2):
        resp = await client.post(SEARCH, json=since("0"), headers=AUTH)
        assert resp.status == 200
        assert "X-HubSpot-RateLimit-Remaining" not in resp.headers
    body = await hubspot_error(await client.post(SEARCH, json=since("0"), headers=AUTH), 429, "RATE_LIMITS")
    assert body["policyName"] == "SECONDLY"
    resp = await client.get(f"{CONTACTS}/1", headers=AUTH)  # other requests are not held back
    assert resp.status == 404
