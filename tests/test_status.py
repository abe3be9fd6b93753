"""GET /status: the dashboard's header (the CRM connection from real exchanges) and its filter counts."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from .conftest import eventually, set_faults, wait_status


async def _status(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    resp = await client.get("/status", headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_status_follows_the_real_crm_exchanges_and_counts_contacts(
    backend: TestClient, auth: dict[str, str], crm: TestServer
) -> None:
    assert (await backend.get("/status")).status == 401
    first = await _status(backend, auth)
    assert first["contacts"] == {"pending": 0, "synced": 0, "failed": 0, "deleting": 0}
    assert first["crm"]["state"] in ("unknown", "ok")  # the readiness probe may have talked to the CRM already

    resp = await backend.post(
        "/users", json={"name": "Ann Lee", "email": "ann@example.com", "phone": "123-456-7890"}, headers=auth
    )
    await wait_status(backend, auth, (await resp.json())["id"], "synced")
    ok = await _status(backend, auth)
    assert ok["crm"]["state"] == "ok" and ok["crm"]["last_success_at"] and ok["crm"]["failing_since"] is None
    assert ok["contacts"]["synced"] == 1

    await set_faults(crm, fail_next=1_000, fail_status=503)  # the CRM is down: the push keeps being retried
    resp = await backend.post(
        "/users", json={"name": "Bob Ray", "email": "bob@example.com", "phone": "123-456-7891"}, headers=auth
    )
    assert resp.status == 201

    async def failing() -> dict[str, Any] | None:
        now = await _status(backend, auth)
        return now if now["crm"]["state"] == "failing" else None

    down = await eventually(failing)
    assert down["crm"]["failing_since"] >= ok["crm"]["last_success_at"]
    assert "503" in down["crm"]["last_error"] and down["crm"]["consecutive_failures"] >= 1
    assert down["contacts"]["synced"] == 1 and down["contacts"]["pending"] + down["contacts"]["failed"] == 1

    # The next real exchange that succeeds clears it.
    await set_faults(crm, fail_next=0)
    await backend.post("/users/sync-failed", headers=auth)  # in case its retries ran out meanwhile

    async def recovered() -> dict[str, Any] | None:
        now = await _status(backend, auth)
        return now if now["crm"]["state"] == "ok" and now["contacts"]["synced"] == 2 else None

    again = await eventually(recovered)
    assert again["crm"]["failing_since"] is None and again["crm"]["last_error"] is None
