"""The mock CRM's OpenAPI document: served as kept, valid, route for route, and honoured by the app."""

from __future__ import annotations

import asyncio
import io

from aiohttp.test_utils import TestClient, make_mocked_request
from openapi_spec_validator import validate

from mock_crm.app import OPENAPI, create_app
from mock_crm.areas import Area, area_of
from tests.mock_crm.helpers import ALICE, config
from tests.test_openapi import (
    app_routes,
    assert_documented,
    document_routes,
    fuzz,
    lint,
    load,
    operations,
    report,
    route_diff,
)

# Changing the faults would make the rest of the run slow (latency_ms) or flaky (failure_rate, lost replies).
NOT_FUZZED = ("PUT /crm/_admin/faults",)


def test_document_is_valid_openapi_3_1() -> None:
    document = load(OPENAPI)
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert lint(document) == []


def test_document_lists_exactly_the_routes_the_app_serves() -> None:
    served, documented = app_routes(create_app(config())), document_routes(load(OPENAPI))
    assert served == documented, route_diff(served, documented)


def test_operations_without_a_bearer_token_are_the_ones_the_app_leaves_open() -> None:
    document = load(OPENAPI)
    for method, path, op in operations(document):
        open_in_document = op.get("security", document["security"]) == [] or {} in op.get("security", [])
        open_in_app = area_of(make_mocked_request(method, path)) in (Area.PUBLIC, Area.OAUTH)
        assert open_in_document == open_in_app, f"{method} {path}"


async def test_served_document_is_the_file(mock: TestClient) -> None:
    resp = await mock.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.read() == OPENAPI.read_bytes()


async def test_schemathesis_finds_no_server_error_and_no_contract_breach(
    mock: TestClient, headers: dict[str, str]
) -> None:
    resp = await mock.post("/crm/users", json=ALICE, headers=headers)
    assert resp.status == 201, await resp.text()
    crm_id = (await resp.json())["crm_id"]
    resp = await mock.post(
        "/crm/meetings", json={"title": "Kick-off", "starts_at": "2030-01-01T10:00:00Z"}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    ids = {"crm_id": crm_id, "meeting_id": (await resp.json())["meeting_id"]}
    base_url = str(mock.make_url("")).rstrip("/")
    document = load(OPENAPI)
    findings, sent = await asyncio.to_thread(fuzz, document, base_url, headers, exclude=NOT_FUZZED, path_parameters=ids)
    assert not findings, report(findings)
    assert set(sent) == {f"{m} {p}" for m, p in document_routes(document)} - set(NOT_FUZZED)


async def test_documented_fault_answers(mock: TestClient, headers: dict[str, str]) -> None:
    document = load(OPENAPI)

    async def set_faults(**faults: float) -> None:
        resp = await mock.put("/crm/_admin/faults", json=faults, headers=headers)
        assert resp.status == 200
        assert_documented(document, "PUT", "/crm/_admin/faults", 200, await resp.json())

    resp = await mock.post("/crm/users", data=io.BytesIO(b" " * (1024 * 1024 + 1)), headers=headers)
    assert resp.status == 413
    assert_documented(document, "POST", "/crm/users", 413, await resp.json())

    await set_faults(failure_rate=1)
    resp = await mock.get("/crm/users", headers=headers)
    assert resp.status == 503
    assert_documented(document, "GET", "/crm/users", 503, await resp.json())

    await set_faults(failure_rate=0, fail_next=1, fail_status=500)
    resp = await mock.post("/crm/users", json=ALICE, headers=headers)
    assert resp.status == 500
    assert_documented(document, "POST", "/crm/users", 500, await resp.json())

    await set_faults(rate_limit=0.001, rate_burst=1)
    assert (await mock.get("/crm/users", headers=headers)).status == 200
    resp = await mock.get("/crm/users", headers=headers)
    assert resp.status == 429 and resp.headers["Retry-After"].isdigit()
    assert_documented(document, "GET", "/crm/users", 429, await resp.json())
