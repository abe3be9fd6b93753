"""The contacts API: creation, validation, reads, listing; nothing is written on an error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiohttp.test_utils import TestClient

from .conftest import get_user

VALID = {"name": "John Smith", "email": "john.smith@example.com", "phone": "123-456-7890"}


async def _count(backend: TestClient, auth: dict[str, str]) -> int:
    resp = await backend.get("/users?limit=500", headers=auth)
    return len((await resp.json())["items"])


async def test_create_user(backend: TestClient, auth: dict[str, str]) -> None:
    resp = await backend.post("/users", json=VALID, headers=auth)
    assert resp.status == 201
    user = await resp.json()
    assert resp.headers["Location"] == f"/users/{user['id']}"
    assert uuid.UUID(user["id"])
    assert {k: user[k] for k in VALID} == VALID
    assert user["sync_status"] == "pending"
    assert user["crm_id"] is None and user["last_error"] is None and user["last_synced_at"] is None
    assert user["sync_attempts"] == 0
    assert user["created_at"].endswith("Z") and user["updated_at"].endswith("Z")
    assert (await get_user(backend, auth, user["id"]))["email"] == VALID["email"]


async def test_email_is_stored_normalised(backend: TestClient, auth: dict[str, str]) -> None:
    resp = await backend.post("/users", json={**VALID, "email": "John.Smith@EXAMPLE.com"}, headers=auth)
    assert (await resp.json())["email"] == "john.smith@example.com"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"email": VALID["email"], "phone": VALID["phone"]}, "name", "required"),
        ({"name": VALID["name"], "phone": VALID["phone"]}, "email", "required"),
        ({"name": VALID["name"], "email": VALID["email"]}, "phone", "required"),
        ({**VALID, "name": ""}, "name", "blank"),
        ({**VALID, "name": "   "}, "name", "blank"),
        ({**VALID, "name": "x" * 201}, "name", "200"),
        ({**VALID, "name": 42}, "name", "string"),
        ({**VALID, "name": None}, "name", "string"),
        ({**VALID, "email": "john.smith"}, "email", "valid"),
        ({**VALID, "email": "john@@example.com"}, "email", "valid"),
        ({**VALID, "email": ["a@example.com"]}, "email", "string"),
        ({**VALID, "phone": "12345"}, "phone", "7 to 15"),
        ({**VALID, "phone": "1" * 16}, "phone", "7 to 15"),
        ({**VALID, "phone": "123-abc-7890"}, "phone", "7 to 15"),
        ({**VALID, "phone": 1234567890}, "phone", "string"),
        ({**VALID, "role": "admin"}, "role", "not a known field"),
    ],
)
async def test_validation_errors(
    backend: TestClient, auth: dict[str, str], body: dict, field: str, reason: str
) -> None:
    resp = await backend.post("/users", json=body, headers=auth)
    assert resp.status == 422
    error = await resp.json()
    assert error["error"] == "validation_failed"
    assert reason in error["fields"][field]
    assert await _count(backend, auth) == 0


@pytest.mark.parametrize("phone", ["123-456-7890", "+44 20 7946 0958", "(555) 123.4567", "1234567"])
async def test_valid_phones(backend: TestClient, auth: dict[str, str], phone: str) -> None:
    resp = await backend.post("/users", json={**VALID, "phone": phone}, headers=auth)
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2, 3]", 400),
        (b'"a string"', 400),
        (b"", 400),
        (b'{"name": "a", "name": "b", "email": "a@example.com", "phone": "1234567"}', 400),
        (b"\xff\xfe", 400),
        (b"[" * 50_000 + b"]" * 50_000, 413),
        (b'{"name": "' + b"x" * 70_000 + b'"}', 413),
    ],
)
async def test_malformed_bodies(backend: TestClient, auth: dict[str, str], data: bytes, status: int) -> None:
    resp = await backend.post("/users", data=data, headers={**auth, "Content-Type": "application/json"})
    assert resp.status == status
    body = await resp.json()
    assert set(body) >= {"error", "message"}
    assert await _count(backend, auth) == 0


async def test_deeply_nested_json_under_the_size_limit(backend: TestClient, auth: dict[str, str]) -> None:
    resp = await backend.post("/users", data=b"[" * 30_000 + b"]" * 30_000, headers=auth)
    assert resp.status == 400


async def test_duplicate_email_is_409_with_the_existing_id(backend: TestClient, auth: dict[str, str]) -> None:
    first = await (await backend.post("/users", json=VALID, headers=auth)).json()
    resp = await backend.post(
        "/users", json={**VALID, "name": "Other", "email": "JOHN.SMITH@example.com"}, headers=auth
    )
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "duplicate_email" and body["id"] == first["id"]
    assert await _count(backend, auth) == 1


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid", "1", "%00"])
async def test_unknown_or_malformed_id_is_404(backend: TestClient, auth: dict[str, str], user_id: str) -> None:
    for method, suffix in (("GET", ""), ("GET", "/history"), ("POST", "/sync"), ("PATCH", "")):
        resp = await backend.request(method, f"/users/{user_id}{suffix}", headers=auth, json={"name": "x"})
        assert resp.status == 404, (method, suffix)
        assert (await resp.json())["error"] == "not_found"


async def test_listing_pages_in_a_stable_order(backend: TestClient, auth: dict[str, str]) -> None:
    created = []
    for i in range(7):
        resp = await backend.post("/users", json={**VALID, "email": f"u{i}@example.com"}, headers=auth)
        created.append((await resp.json())["id"])
    seen, cursor = [], None
    while True:
        url = "/users?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await (await backend.get(url, headers=auth)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    default = await (await backend.get("/users", headers=auth)).json()
    assert len(default["items"]) == 7 and default["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"), ("cursor=zzz", "cursor"),
     ("sync_status=done", "sync_status")],
)  # fmt: skip
async def test_listing_rejects_bad_parameters(
    backend: TestClient, auth: dict[str, str], query: str, field: str
) -> None:
    resp = await backend.get(f"/users?{query}", headers=auth)
    assert resp.status == 422
    assert field in (await resp.json())["fields"]


async def test_unknown_route_and_method_are_json(backend: TestClient, auth: dict[str, str]) -> None:
    resp = await backend.get("/nope", headers=auth)
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await backend.delete("/users", headers=auth)
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"


async def test_concurrent_creates_commit_together_and_still_catch_duplicates(
    backend: TestClient, auth: dict[str, str]
) -> None:
    bodies = [{**VALID, "email": f"c{i % 15}@example.com"} for i in range(30)]  # every email twice
    responses = await asyncio.gather(*(backend.post("/users", json=body, headers=auth) for body in bodies))
    assert sorted(r.status for r in responses) == [201] * 15 + [409] * 15
    created = {(await r.json())["email"]: (await r.json())["id"] for r in responses if r.status == 201}
    for response in responses:
        if response.status == 409:
            body = await response.json()
            assert body["id"] in created.values()
    assert await _count(backend, auth) == 15
    for user_id in created.values():
        assert (await get_user(backend, auth, user_id))["id"] == user_id
