"""POST /users/batch: up to 1,000 contacts at once, each created (and synced) or refused on its own."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from .conftest import JOHN, crm_call, crm_records, wait_status
from .polling import eventually
from .script_runs import run_script


def person(n: int, **fields: str) -> dict[str, str]:
    return {"name": f"Person {n}", "email": f"person{n}@example.com", "phone": f"555-{n:07d}", **fields}


async def post_batch(backend: TestClient, auth: dict[str, str], items: Any) -> tuple[int, Any]:
    resp = await backend.post("/users/batch", json=items, headers=auth)
    return resp.status, await resp.json()


async def all_users(backend: TestClient, auth: dict[str, str], status: str = "") -> list[dict[str, Any]]:
    users, cursor = [], ""
    while True:
        resp = await backend.get(f"/users?limit=500&sync_status={status}&cursor={cursor}", headers=auth)
        page = await resp.json()
        users += page["items"]
        if not (cursor := page["next_cursor"]):
            return users


async def test_a_mixed_batch_creates_the_valid_items_and_reports_the_others(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    existing = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    items = [
        person(1),
        person(2, email="not an email"),
        {"name": "No Phone", "email": "nophone@example.com"},
        {**person(3), "email": "JOHN.SMITH@example.com"},  # John's, normalised
        person(4),
        {**person(5), "email": "Person4@Example.com"},  # item 4's, normalised
        "not an object",
        {**person(6), "role": "admin"},
        {**person(7), "email": "john.smith@example.com"},  # John's again, after item 3
    ]
    status, body = await post_batch(backend, auth, items)
    assert status == 207, body
    assert (body["created"], body["refused"]) == (2, 7)
    results = body["items"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [201, 422, 422, 409, 201, 409, 422, 422, 409]
    assert "email" in results[1]["fields"] and results[2]["fields"] == {"phone": "is required"}
    assert results[3]["error"] == "duplicate_email" and results[3]["id"] == existing["id"]
    assert results[5]["error"] == "duplicate_email" and results[5]["id"] == results[4]["id"]
    assert results[5]["message"] == "Item 4 of this batch has this email."
    assert results[8]["error"] == "duplicate_email" and results[8]["id"] == existing["id"]
    assert "body" in results[6]["fields"] and results[7]["fields"] == {"role": "is not a known field"}
    for index in (0, 4):
        user = await wait_status(backend, auth, results[index]["id"], "synced")
        assert user["email"] == items[index]["email"]
        assert crm_records(crm.app)[user["crm_id"]].email == items[index]["email"]
    stored = {u["email"] for u in await all_users(backend, auth)}
    assert stored == {JOHN["email"], "person1@example.com", "person4@example.com"}  # nothing of the refused


async def test_a_full_batch_of_1000_is_stored_and_synced(backend: TestClient, auth: dict[str, str]) -> None:
    status, body = await post_batch(backend, auth, [person(n, name="N" * 200) for n in range(1000)])
    assert status == 207 and body["created"] == 1000, body
    ids = {r["id"] for r in body["items"]}
    assert len(ids) == 1000

    async def synced() -> bool:
        return {u["id"] for u in await all_users(backend, auth, "synced")} == ids

    await eventually(synced, timeout=120, interval=0.2)


async def test_a_batch_that_is_not_a_list_of_1_to_1000_is_refused_whole(
    backend: TestClient, auth: dict[str, str]
) -> None:
    for items in ({"users": [person(1)]}, [], [person(n) for n in range(1001)], "x"):
        status, body = await post_batch(backend, auth, items)
        assert status == 422 and body["error"] == "validation_failed" and "body" in body["fields"], body
    resp = await backend.post("/users/batch", data=b"[{", headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
    resp = await backend.post("/users/batch", json=[person(1)])
    assert resp.status == 401
    assert await all_users(backend, auth) == []


async def test_a_body_past_the_batch_limit_is_413_and_other_routes_keep_theirs(
    backend: TestClient, auth: dict[str, str]
) -> None:
    big = json.dumps([person(n, name="N" * 3000) for n in range(1000)]).encode()  # > 2 MiB in all
    headers = {**auth, "Content-Type": "application/json"}
    resp = await backend.post("/users/batch", data=io.BytesIO(big), headers=headers)
    assert resp.status == 413 and (await resp.json())["error"] == "payload_too_large"
    resp = await backend.post("/users", json={**JOHN, "name": "N" * 70_000}, headers=auth)
    assert resp.status == 413


async def test_concurrent_batches_with_the_same_emails_create_each_once(
    backend: TestClient, auth: dict[str, str]
) -> None:
    batches = [[person(n) for n in range(start, start + 100)] for start in (0, 50, 25, 75)]
    batches[1].reverse()  # the same emails in the opposite order: no deadlock either
    answers = await asyncio.gather(*(post_batch(backend, auth, items) for items in batches))
    created: dict[str, str] = {}
    for (status, body), items in zip(answers, batches, strict=True):
        assert status == 207, body
        for result, item in zip(body["items"], items, strict=True):
            if result["status"] == 201:
                assert item["email"] not in created
                created[item["email"]] = result["id"]
    assert len(created) == 175  # emails 0..174, each created by exactly one batch
    for (_, body), items in zip(answers, batches, strict=True):
        for result, item in zip(body["items"], items, strict=True):
            if result["status"] == 409:
                assert result["id"] == created[item["email"]]  # the one who has it
    assert {u["email"]: u["id"] for u in await all_users(backend, auth)} == created


async def test_import_csv_loads_a_file_in_pages_and_reports_every_line(
    backend: TestClient, auth: dict[str, str], tmp_path: Path
) -> None:
    existing = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    lines = [
        "Phone,Name,EMAIL",  # any order, any case
        '555-000-0001,"Smith, Jane",jane@example.com',  # line 2: a comma inside quotes
        "555-000-0002,Bad Email,not-an-email",  # line 3: rejected
        "555-000-0003,Too few",  # line 4: rejected
        "",  # line 5: blank, skipped
        f"555-000-0004,John Again,{JOHN['email'].upper()}",  # line 6: linked to John
        "555-000-0005,Jane Again,jane@example.com",  # line 7: linked to line 2's contact
        "12,Short Phone,short@example.com",  # line 8: rejected
        *(f"555-{n:07d},Bulk {n},bulk{n}@example.com" for n in range(1200)),  # lines 9..1208: two pages
    ]
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, out, err = await run_script(backend, auth, "import_csv.sh", str(csv_file))
    assert status == 1, (out, err)  # rows were rejected
    summary, *rejected = out.strip().splitlines()
    assert summary.startswith("created 1,201, linked 2, rejected 3 (of 1,206 rows")
    assert [line.split(":")[0] for line in rejected] == ["line 3", "line 4", "line 8"]
    assert "email" in rejected[0] and "has 2 fields; the header has 3" in rejected[1] and "phone" in rejected[2]
    assert "[" + "#" * 30 + "] 100% 1,206/1,206 rows" in err  # the progress bar, full at the end
    users = {u["email"]: u for u in await all_users(backend, auth)}
    assert len(users) == 1202 and users["jane@example.com"]["name"] == "Smith, Jane"
    assert users[JOHN["email"]]["id"] == existing["id"] and users[JOHN["email"]]["name"] == JOHN["name"]
    await wait_status(backend, auth, users["bulk1199@example.com"]["id"], "synced", timeout=60)
    status, out, _ = await run_script(backend, auth, "import_csv.sh", str(csv_file))  # again: nothing new
    assert status == 1 and out.startswith("created 0, linked 1,203, rejected 3")


async def test_import_csv_refuses_a_file_without_the_columns(
    backend: TestClient, auth: dict[str, str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "wrong.csv"
    csv_file.write_text("name,mail\nA,a@example.com\n", encoding="utf-8")
    status, out, err = await run_script(backend, auth, "import_csv.sh", str(csv_file))
    assert status == 2 and out == "" and "has no email, phone column" in err


async def test_import_crm_draws_a_bar_from_the_crms_total(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    for n in range(150):
        status, _ = await crm_call(crm, "POST", "/crm/users", json=person(n))
        assert status == 201
    status, listing = await crm_call(crm, "GET", "/crm/users?limit=1")
    assert status == 200 and listing["total"] == 150 and len(listing["items"]) == 1
    status, out, err = await run_script(backend, auth, "import_crm.sh")
    assert status == 0, err
    done = json.loads(out)
    assert done["total"] == 150 and done["counts"]["seen"] == 150
    assert "import: done [" + "#" * 30 + "] 100% 150/150 records" in err
