"""The HubSpot fake's OpenAPI document: valid, route for route, and honoured by the app under fuzzing."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, make_mocked_request
from openapi_spec_validator import validate

from mock_crm.areas import Area
from mock_crm.hubspot.app import OPENAPI, create_app
from mock_crm.hubspot.middleware import area_of
from tests.mock_crm.hubspot_helpers import AUTH, MEETINGS, create, hubspot_config
from tests.test_openapi import app_routes, document_routes, fuzz, lint, load, operations, report, route_diff

# Faults would make the rest of the run slow or flaky; expiring tokens is harmless but says nothing.
NOT_FUZZED = ("PUT /_fake/faults",)


def test_document_is_valid_openapi_3_1() -> None:
    document = load(OPENAPI)
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert lint(document) == []


def test_document_lists_exactly_the_routes_the_app_serves() -> None:
    served, documented = app_routes(create_app(hubspot_config())), document_routes(load(OPENAPI))
    assert served == documented, route_diff(served, documented)


def test_operations_without_a_token_are_the_ones_the_app_leaves_open() -> None:
    document = load(OPENAPI)
    for method, path, op in operations(document):
        open_in_document = op.get("security", document["security"]) == []
        open_in_app = area_of(make_mocked_request(method, path)) in (Area.PUBLIC, Area.OAUTH)
        assert open_in_document == open_in_app, f"{method} {path}"


async def test_served_document_is_the_file(hubspot: TestClient) -> None:
    resp = await hubspot.get("/openapi.json")
    assert resp.status == 200 and await resp.read() == OPENAPI.read_bytes()


async def test_schemathesis_finds_no_server_error_and_no_contract_breach(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await make_hubspot(rate_max=1_000_000, search_rate=1_000_000)
    contact = await create(client, 1)
    resp = await client.post(MEETINGS, json={"properties": {"hs_timestamp": "1"}}, headers=AUTH)
    meeting = (await resp.json())["id"]
    ids = {"contact_id": contact["id"], "meeting_id": meeting, "from_type": "meetings", "from_id": meeting,
           "to_type": "contacts", "to_id": contact["id"]}  # fmt: skip
    base_url = str(client.make_url("")).rstrip("/")
    document = load(OPENAPI)
    findings, sent = await asyncio.to_thread(fuzz, document, base_url, AUTH, exclude=NOT_FUZZED, path_parameters=ids)
    assert not findings, report(findings)
    assert set(sent) == {f"{m} {p}" for m, p in document_routes(document)} - set(NOT_FUZZED)
