"""Races and odd answers: local edits during a merge, bad CRM data, a sweep that meets a bad record."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.crm.retry import attempt_tracer
from crmsync.crm.select import mock_adapter
from crmsync.keys import engine_key
from crmsync.sync.reconcile import sweep
from mock_crm import keys as mock_keys

from .conftest import (
    JOHN,
    crm_call,
    crm_records,
    eventually,
    get_user,
    post_webhook,
    set_faults,
    synced_user,
    wait_status,
)


async def test_a_local_edit_during_a_412_merge_is_kept(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    await crm_call(crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit", json={"phone": "555-111-2222"})
    await set_faults(crm, latency_ms=400)
    resp = await backend.patch(f"/users/{user['id']}", json={"email": "new@example.com"}, headers=auth)
    assert resp.status == 200
    # The push's If-Match PATCH meets the CRM's change (412), so it reads the record: edit meanwhile.
    stats = crm_app[mock_keys.stats]
    await eventually(lambda: stats.calls["GET /crm/users/{crm_id}"] == 1)
    resp = await backend.patch(f"/users/{user['id']}", json={"name": "Edited Locally"}, headers=auth)
    assert resp.status == 200
    await set_faults(crm, latency_ms=0)

    async def settled() -> dict[str, Any] | None:
        current = await get_user(backend, auth, user["id"])
        return current if current["sync_status"] == "synced" and current["name"] == "Edited Locally" else None

    final = await eventually(settled)
    assert (final["email"], final["phone"]) == ("new@example.com", "555-111-2222")
    record = crm_records(crm_app)[user["crm_id"]]
    assert (record.name, record.email, record.phone) == ("Edited Locally", "new@example.com", "555-111-2222")


async def test_an_edit_the_crm_rejects_after_the_create_keeps_the_link(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    status, other = await crm_call(crm, "POST", "/crm/users", json={**JOHN, "email": "taken@example.com"})
    assert status == 201
    await set_faults(crm, latency_ms=300)
    created = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    resp = await backend.patch(f"/users/{created['id']}", json={"email": "taken2@example.com"}, headers=auth)
    assert resp.status == 200
    await crm_call(crm, "PATCH", f"/crm/users/{other['crm_id']}", json={"email": "taken2@example.com"})
    await set_faults(crm, latency_ms=0)
    failed = await wait_status(backend, auth, created["id"], "failed")
    assert failed["crm_id"] and failed["crm_id"] != other["crm_id"]  # our own record, still linked
    assert "another contact" in failed["last_error"] and failed["next_retry_at"] is None
    assert len(crm_records(crm_app)) == 2


async def test_crm_values_are_normalised_like_local_input(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    user = await synced_user(backend, auth)
    edit = {"email": "Mixed.Case@Example.COM", "name": "  Padded Name  "}
    await crm_call(crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit", json=edit)
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 200
    current = await get_user(backend, auth, user["id"])
    assert (current["email"], current["name"]) == ("mixed.case@example.com", "Padded Name")
    duplicate = await backend.post("/users", json={**JOHN, "email": "MIXED.case@example.com"}, headers=auth)
    assert duplicate.status == 409


async def test_a_sweep_skips_a_record_it_cannot_apply_and_goes_on(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await set_faults(crm, fail_next=1, fail_status=400)
    orphan = await (await backend.post("/users", json={**JOHN, "email": "z@example.com"}, headers=auth)).json()
    await wait_status(backend, auth, orphan["id"], "failed")  # never reached the CRM; holds z@ locally
    first = await synced_user(backend, auth, email="a@example.com")
    second = await synced_user(backend, auth, email="b@example.com")
    await crm_call(crm, "POST", f"/crm/_admin/users/{first['crm_id']}/edit", json={"email": "z@example.com"})
    await crm_call(crm, "POST", f"/crm/_admin/users/{second['crm_id']}/edit", json={"phone": "555-222-3333"})
    counts = await sweep(backend.app[engine_key])
    assert counts["rejected"] == 1 and counts["changed"] == 1
    assert (await get_user(backend, auth, second["id"]))["phone"] == "555-222-3333"
    assert (await get_user(backend, auth, first["id"]))["email"] == "a@example.com"


async def test_a_merge_that_collides_with_another_users_email_fails_readably(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    await set_faults(crm, fail_next=1, fail_status=400)
    orphan = await (await backend.post("/users", json={**JOHN, "email": "z@example.com"}, headers=auth)).json()
    await wait_status(backend, auth, orphan["id"], "failed")
    user = await synced_user(backend, auth, email="b@example.com")
    await crm_call(crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit", json={"email": "z@example.com"})
    resp = await backend.patch(f"/users/{user['id']}", json={"name": "Local Name"}, headers=auth)
    assert resp.status == 200
    failed = await wait_status(backend, auth, user["id"], "failed")
    assert failed["last_error"] == "The CRM gave this contact an email that another local user has."


async def test_out_of_range_inputs_are_client_errors(backend: TestClient, auth: dict[str, str]) -> None:
    cursor = base64.urlsafe_b64encode(b"u:9223372036854775808").decode().rstrip("=")
    resp = await backend.get(f"/users?cursor={cursor}", headers=auth)
    assert resp.status == 422
    user = await synced_user(backend, auth)
    for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        event = {"crm_id": user["crm_id"], "updated_fields": {"phone": "1234567"}, "timestamp": stamp}
        status, body = await post_webhook(backend, event)
        assert status == 422 and "timestamp" in body["fields"]


async def test_retry_after_zero_does_not_spin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> None:
    calls = []

    async def throttled(request: web.Request) -> web.Response:
        calls.append(request.path)
        if request.path == "/crm/token":
            return web.json_response({"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        if len(calls) <= 4:
            return web.json_response({"error": "rate_limited"}, status=429, headers={"Retry-After": "0"})
        return web.json_response({"crm_id": "CRM1", "updated_at": "2026-01-01T00:00:00Z", **JOHN}, status=201)

    upstream = web.Application()
    upstream.router.add_route("*", "/{tail:.*}", throttled)
    server = await aiohttp_server(upstream)

    async with aiohttp.ClientSession(trace_configs=[attempt_tracer()]) as session:
        crm = mock_adapter(session, str(server.make_url("")).rstrip("/"), "id", "secret-value")
        contact = await crm.create_contact(JOHN, "key", [])
    assert contact.crm_id == "CRM1" and len(calls) == 5
