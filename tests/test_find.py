"""Finding things: GET /users?q= with sync_status and paging, GET /conflicts, and last_synced_at on CRM news."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient, TestServer

from crmsync.timeutil import isoformat, utcnow

from .conftest import crm_call, get_user, post_webhook, set_faults, synced_user, wait_status
from .test_bulk import post_batch


async def search(backend: TestClient, auth: dict[str, str], **query: str) -> tuple[int, Any]:
    resp = await backend.get(f"/users?{urlencode(query)}", headers=auth)
    return resp.status, await resp.json()


async def found(backend: TestClient, auth: dict[str, str], **query: str) -> list[str]:
    """The names every page of a search holds, following next_cursor."""
    names: list[str] = []
    while True:
        status, page = await search(backend, auth, **query)
        assert status == 200, page
        names += [user["name"] for user in page["items"]]
        if not page["next_cursor"]:
            return names
        query["cursor"] = page["next_cursor"]


def webhook(crm_id: str, **fields: str) -> dict[str, Any]:
    at = isoformat(utcnow() + timedelta(seconds=1))
    return {"event_id": f"evt_{uuid.uuid4().hex}", "crm_id": crm_id, "updated_fields": fields, "timestamp": at}


async def test_q_matches_name_email_or_phone_ignoring_case(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    people = [
        {"name": "Ada Lovelace", "email": "ada@analytical.example", "phone": "+44 20 7946 0100"},
        {"name": "Grace Hopper", "email": "grace@navy.example", "phone": "555-010-0200"},
        {"name": "Half 50% off", "email": "sale@shop.example", "phone": "555-010-0300"},
        {"name": "Under_score", "email": "under@shop.example", "phone": "555-010-0400"},
        {"name": "Back\\slash", "email": "back@shop.example", "phone": "555-010-0500"},
        {"name": "ÉMILE Zola", "email": "zola@lettres.example", "phone": "555-010-0600"},
    ]
    status, body = await post_batch(backend, auth, people)
    assert status == 207 and body["created"] == 6
    assert await found(backend, auth, q="ADA") == ["Ada Lovelace"]  # name and email, once
    assert await found(backend, auth, q="NaVy.Example") == ["Grace Hopper"]
    assert await found(backend, auth, q="7946 01") == ["Ada Lovelace"]
    assert await found(backend, auth, q="shop") == ["Back\\slash", "Half 50% off", "Under_score"]  # email order
    # LIKE's wildcards and its escape character are taken literally.
    assert await found(backend, auth, q="%") == ["Half 50% off"]
    assert await found(backend, auth, q="_") == ["Under_score"]
    assert await found(backend, auth, q="\\") == ["Back\\slash"]
    assert await found(backend, auth, q="émile") == await found(backend, auth, q="Émile") == ["ÉMILE Zola"]
    assert await found(backend, auth, q="nobody") == []
    assert len(await found(backend, auth, q="")) == 6  # an empty q is no filter


async def test_q_combines_with_sync_status_and_paging(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    status, body = await post_batch(
        backend,
        auth,
        [{"name": f"Pager {n}", "email": f"p{n}@example.com", "phone": f"555-000-{n:04d}"} for n in range(5)],
    )
    assert status == 207
    for item in body["items"]:
        await wait_status(backend, auth, item["id"], "synced")
    await set_faults(crm, failure_rate=1)
    resp = await backend.post("/users", json={"name": "Pager failing", "email": "pf@example.com", "phone": "5550001111"},
                              headers=auth)  # fmt: skip
    await wait_status(backend, auth, (await resp.json())["id"], "failed", timeout=30)  # and stays so: the CRM fails
    everyone = [f"Pager {n}" for n in range(5)]
    assert await found(backend, auth, q="pager", limit="2") == [*everyone, "Pager failing"]
    assert await found(backend, auth, q="pager", sync_status="synced", limit="2") == everyone
    assert await found(backend, auth, q="pager", sync_status="failed") == ["Pager failing"]
    assert await found(backend, auth, q="pager 3", sync_status="synced") == ["Pager 3"]
    _, first = await search(backend, auth, q="pager", limit="2")
    assert [u["name"] for u in first["items"]] == everyone[:2] and first["next_cursor"]


async def test_order_newest_pages_newest_first_with_status_and_q(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    people = [{"name": f"Order {n}", "email": f"o{n}@example.com", "phone": f"555-100-{n:04d}"} for n in range(7)]
    ids = []
    for person in people:  # one at a time: each is newer than the one before
        resp = await backend.post("/users", json=person, headers=auth)
        assert resp.status == 201
        ids.append((await resp.json())["id"])
    for user_id in ids:  # synced before the CRM starts failing, so only the next one can end failed
        await wait_status(backend, auth, user_id, "synced")
    created = [p["name"] for p in people]
    newest = created[::-1]
    assert await found(backend, auth, order="newest", limit="3") == newest  # 3 + 3 + 1, each once
    assert await found(backend, auth, order="oldest", limit="3") == created  # the default, said
    assert await found(backend, auth, limit="3") == created
    assert await found(backend, auth, order="newest", q="order 1") == ["Order 1"]
    assert await found(backend, auth, order="newest", q="ORDER", limit="2") == newest
    await set_faults(crm, failure_rate=1)
    resp = await backend.post("/users", json={"name": "Order failing", "email": "of@example.com", "phone": "5550009999"},
                              headers=auth)  # fmt: skip
    await wait_status(backend, auth, (await resp.json())["id"], "failed", timeout=30)
    assert await found(backend, auth, order="newest", sync_status="failed") == ["Order failing"]
    assert (await found(backend, auth, order="newest", limit="4"))[:2] == ["Order failing", "Order 6"]
    # A cursor belongs to its order: taken to the other one it is refused, not read as a place.
    _, first = await search(backend, auth, order="newest", limit="2")
    status, body = await search(backend, auth, order="oldest", cursor=first["next_cursor"])
    assert status == 422 and "cursor" in body["fields"], body
    status, body = await search(backend, auth, order="sideways")
    assert status == 422 and "order" in body["fields"], body


async def test_a_bad_q_is_422(backend: TestClient, auth: dict[str, str]) -> None:
    for q in ("x" * 201, "a\x00b"):
        status, body = await search(backend, auth, q=q)
        assert status == 422 and "q" in body["fields"], body


async def test_conflicts_are_listed_newest_first_in_pages(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    ada = await synced_user(backend, auth, name="Ada", email="ada@example.com")
    bob = await synced_user(backend, auth, name="Bob", email="bob@example.com")
    await set_faults(crm, failure_rate=1)  # local edits stay here, not yet agreed with the CRM
    for user, phone in ((ada, "111-111-1111"), (bob, "222-222-2222")):
        resp = await backend.patch(f"/users/{user['id']}", json={"phone": phone}, headers=auth)
        assert resp.status == 200
        status, _ = await post_webhook(backend, webhook(user["crm_id"], phone="999-999-9999"))
        assert status == 200
    await set_faults(crm, failure_rate=0)
    resp = await backend.get("/conflicts?limit=1", headers=auth)
    assert resp.status == 200
    page = await resp.json()
    [newest] = page["items"]
    assert newest["user_id"] == bob["id"] and newest["field"] == "phone" and newest["winner"] == "crm"
    assert (newest["local_value"], newest["crm_value"], newest["base_value"]) == (
        "222-222-2222", "999-999-9999", bob["phone"],
    )  # fmt: skip
    assert newest["resolved_at"].endswith("Z") and newest["origin"]
    resp = await backend.get(f"/conflicts?limit=1&cursor={page['next_cursor']}", headers=auth)
    page = await resp.json()
    assert [c["user_id"] for c in page["items"]] == [ada["id"]] and page["next_cursor"] is None
    resp = await backend.get("/conflicts?cursor=bogus", headers=auth)
    assert resp.status == 422
    resp = await backend.get("/conflicts")
    assert resp.status == 401


async def test_crm_news_written_here_moves_last_synced_at(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    user = await synced_user(backend, auth)
    before = user["last_synced_at"]
    assert before is not None
    status, _ = await post_webhook(backend, webhook(user["crm_id"], phone="987-654-3210"))
    assert status == 200
    after_webhook = (await get_user(backend, auth, user["id"]))["last_synced_at"]
    assert after_webhook > before
    status, body = await crm_call(crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit", json={"name": "J. Smith"})
    assert status == 200, body
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 200
    reconciled = await get_user(backend, auth, user["id"])
    assert reconciled["name"] == "J. Smith" and reconciled["last_synced_at"] > after_webhook
