"""User CRUD, validation, duplicates and hostile input."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from mock_crm import keys
from mock_crm.clock import parse_ts
from tests.mock_crm.helpers import ALICE, person

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


async def test_create_get_patch_delete(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.post("/crm/users", json=ALICE, headers=headers)
    assert resp.status == 201
    created = await resp.json()
    assert re.fullmatch(r"CRM[0-9a-f]{16}", created["crm_id"])
    assert TS.fullmatch(created["updated_at"])
    assert {k: created[k] for k in ALICE} == ALICE
    crm_id = created["crm_id"]

    resp = await mock.get(f"/crm/users/{crm_id}", headers=headers)
    assert await resp.json() == created

    resp = await mock.patch(f"/crm/users/{crm_id}", json={"name": "Alice B"}, headers=headers)
    assert resp.status == 200
    patched = await resp.json()
    assert patched["name"] == "Alice B" and patched["email"] == ALICE["email"]
    assert parse_ts(patched["updated_at"]) > parse_ts(created["updated_at"])

    resp = await mock.delete(f"/crm/users/{crm_id}", headers=headers)
    assert resp.status == 204
    resp = await mock.get(f"/crm/users/{crm_id}", headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"
    assert len(mock.app[keys.store].users) == 0
    calls = mock.app[keys.stats].calls
    assert calls["POST /crm/users"] == 1
    assert calls["GET /crm/users/{crm_id}"] == 2
    assert calls["PATCH /crm/users/{crm_id}"] == 1


async def test_unknown_ids_are_404(mock: TestClient, headers: dict[str, str]) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        resp = await mock.request(method, "/crm/users/CRMdoesnotexist", json={"name": "x"}, headers=headers)
        assert resp.status == 404, method
        assert (await resp.json())["error"] == "not_found"


async def test_noop_patch_keeps_updated_at(mock: TestClient, headers: dict[str, str]) -> None:
    created = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
    resp = await mock.patch(f"/crm/users/{created['crm_id']}", json={"name": ALICE["name"]}, headers=headers)
    assert await resp.json() == created


async def test_updated_at_strictly_increases(mock: TestClient, headers: dict[str, str]) -> None:
    stamps = []
    for n in range(20):
        body = await (await mock.post("/crm/users", json=person(n), headers=headers)).json()
        stamps.append(parse_ts(body["updated_at"]))
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ALICE, "name": ""}, "name"),
        ({**ALICE, "name": "x" * 201}, "name"),
        ({**ALICE, "name": 42}, "name"),
        ({**ALICE, "name": None}, "name"),
        ({**ALICE, "name": "bad\x00name"}, "name"),
        ({**ALICE, "name": "lone \ud800 surrogate"}, "name"),
        ({**ALICE, "email": "not-an-email"}, "email"),
        ({**ALICE, "email": "a@" + "b" * 250 + ".com"}, "email"),
        ({**ALICE, "email": ["a@b.co"]}, "email"),
        ({**ALICE, "phone": "12345"}, "phone"),
        ({**ALICE, "phone": "1" * 16}, "phone"),
        ({**ALICE, "phone": "555-CALL-NOW"}, "phone"),
        ({**ALICE, "phone": "١٢٣٤٥٦٧٨"}, "phone"),
        ({**ALICE, "phone": 5550102000}, "phone"),
        ({"name": "A", "email": "a@b.co"}, "phone"),
        ({**ALICE, "role": "admin"}, "role"),
    ],
)
async def test_invalid_data(mock: TestClient, headers: dict[str, str], body: dict, field: str) -> None:
    resp = await mock.post("/crm/users", json=body, headers=headers)
    assert resp.status == 400
    error = await resp.json()
    assert error["error"] == "invalid_data"
    assert error["message"]
    assert field in error["fields"]
    assert len(mock.app[keys.store].users) == 0


async def test_duplicate_email_is_409_case_insensitive(mock: TestClient, headers: dict[str, str]) -> None:
    first = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
    resp = await mock.post("/crm/users", json={**ALICE, "email": "ALICE@Example.com"}, headers=headers)
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "duplicate" and body["crm_id"] == first["crm_id"]


async def test_patch_validation_and_duplicates(mock: TestClient, headers: dict[str, str]) -> None:
    alice = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
    bob = await (await mock.post("/crm/users", json=person(1), headers=headers)).json()
    url = f"/crm/users/{bob['crm_id']}"
    for body in ({"email": "nope"}, {"nickname": "b"}, {}, {"name": None}, [1]):
        resp = await mock.patch(url, json=body, headers=headers)
        assert resp.status == 400, body
        assert (await resp.json())["error"] == "invalid_data"
    resp = await mock.patch(url, json={"email": "Alice@example.com"}, headers=headers)
    assert resp.status == 409
    assert (await resp.json())["crm_id"] == alice["crm_id"]
    resp = await mock.patch(f"/crm/users/{alice['crm_id']}", json={"email": "ALICE@example.com"}, headers=headers)
    assert resp.status == 200


async def test_delete_frees_the_email(mock: TestClient, headers: dict[str, str]) -> None:
    first = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
    await mock.delete(f"/crm/users/{first['crm_id']}", headers=headers)
    resp = await mock.post("/crm/users", json=ALICE, headers=headers)
    assert resp.status == 201
    assert (await resp.json())["crm_id"] != first["crm_id"]


async def test_responses_are_counted_by_status(mock: TestClient, headers: dict[str, str]) -> None:
    await mock.post("/crm/users", json=ALICE, headers=headers)
    await mock.post("/crm/users", json=ALICE, headers=headers)
    await mock.get("/crm/users")
    responses = mock.app[keys.stats].responses
    assert responses[201] == 1 and responses[409] == 1 and responses[401] == 1


async def test_real_world_names_are_accepted(mock: TestClient, headers: dict[str, str]) -> None:
    names = [
        "\u0645\u0647\u0631\u0646\u0627\u0632\u200c\u0633\u0627\u062f\u0627\u062a",
        "José Ñúñez",
        "李小龍",
        "👩\u200d💻 Dev",
        "O'Brien",
    ]
    for n, name in enumerate(names):
        resp = await mock.post("/crm/users", json={**person(n), "name": name}, headers=headers)
        assert resp.status == 201, name
        assert (await resp.json())["name"] == name
