"""GET /crm/users: updated_since filtering and stable cursor paging."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.mock_crm.helpers import person


async def _create(mock: TestClient, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Create count users and return their records."""
    return [await (await mock.post("/crm/users", json=person(n), headers=headers)).json() for n in range(count)]


async def _pages(mock: TestClient, headers: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    """Follow next_cursor to the end and return every page."""
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await mock.get("/crm/users", params=query, headers=headers)
        assert resp.status == 200
        body = await resp.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_list_all_oldest_first(mock: TestClient, headers: dict[str, str]) -> None:
    users = await _create(mock, headers, 3)
    resp = await mock.get("/crm/users", headers=headers)
    assert await resp.json() == {"items": users, "next_cursor": None, "total": 3}


async def test_updated_since_returns_only_later_changes(mock: TestClient, headers: dict[str, str]) -> None:
    users = await _create(mock, headers, 4)
    since = users[1]["updated_at"]
    edited = await (
        await mock.patch(f"/crm/users/{users[0]['crm_id']}", json={"name": "Edited"}, headers=headers)
    ).json()
    resp = await mock.get("/crm/users", params={"updated_since": since}, headers=headers)
    body = await resp.json()
    assert [u["crm_id"] for u in body["items"]] == [users[2]["crm_id"], users[3]["crm_id"], edited["crm_id"]]
    assert body["total"] == 3  # the records changed since then, in all pages
    # An offset instead of Z, with "+" left unescaped by a careless client, still works.
    resp = await mock.get(f"/crm/users?updated_since={since[:-1]}+00:00", headers=headers)
    assert len((await resp.json())["items"]) == 3


async def test_paging_is_stable_while_records_change(mock: TestClient, headers: dict[str, str]) -> None:
    users = await _create(mock, headers, 7)
    first = await (await mock.get("/crm/users", params={"limit": 3}, headers=headers)).json()
    assert [u["crm_id"] for u in first["items"]] == [u["crm_id"] for u in users[:3]]
    # A record on the first page changes: it moves to the end, nothing is skipped or repeated.
    await mock.patch(f"/crm/users/{users[0]['crm_id']}", json={"name": "Moved"}, headers=headers)
    pages = await _pages(mock, headers, limit=3, cursor=first["next_cursor"])
    rest = [u["crm_id"] for page in pages for u in page]
    assert rest == [u["crm_id"] for u in users[3:]] + [users[0]["crm_id"]]


async def test_exact_page_boundary_has_no_empty_page(mock: TestClient, headers: dict[str, str]) -> None:
    await _create(mock, headers, 4)
    pages = await _pages(mock, headers, limit=2)
    assert [len(page) for page in pages] == [2, 2]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=-1",
        "updated_since=yesterday",
        "updated_since=2026-01-01T00:00:00",
        "cursor=%%%",
        "cursor=bm90IGpzb24",
        "page=2",
    ],
)
async def test_bad_params_are_400(mock: TestClient, headers: dict[str, str], query: str) -> None:
    resp = await mock.get(f"/crm/users?{query}", headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"
