"""Meetings: owner-only CRUD, and "Sync to CRM" in three durable stages with the seed's status shape."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key
from crmsync.store import jobs
from mock_crm import keys as mock_keys

from .conftest import crm_records, eventually, set_faults, sign_up, wait_status

ROOT = Path(__file__).resolve().parent.parent
MEETING = {"title": "Example Sales Meeting", "starts_at": "2026-12-01T15:00:00Z", "ends_at": "2026-12-01T16:00:00Z"}


async def _user(client: TestClient, auth: dict[str, str], email: str, synced: bool = True) -> dict[str, Any]:
    resp = await client.post("/users", json={"name": "Ann Lee", "email": email, "phone": "123-456-7890"}, headers=auth)
    user = await resp.json()
    return await wait_status(client, auth, user["id"], "synced") if synced else user


async def _unsynced_user(client: TestClient, auth: dict[str, str], crm: TestServer, email: str) -> dict[str, Any]:
    """A user whose create the CRM rejected: it has no crm_id until someone pushes it again."""
    await set_faults(crm, fail_next=1, fail_status=400)
    user = await _user(client, auth, email, synced=False)
    return await wait_status(client, auth, user["id"], "failed")


async def _meeting(client: TestClient, auth: dict[str, str], attendee_ids: list[str]) -> dict[str, Any]:
    resp = await client.post("/meetings", json={**MEETING, "attendee_ids": attendee_ids}, headers=auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _status(client: TestClient, auth: dict[str, str], meeting_id: str) -> dict[str, Any]:
    resp = await client.get(f"/meetings/{meeting_id}/sync_status", headers=auth)
    assert resp.status == 200
    return await resp.json()


async def _result(client: TestClient, auth: dict[str, str], meeting_id: str) -> dict[str, Any]:
    resp = await client.get(f"/meetings/{meeting_id}/last_sync_success", headers=auth)
    assert resp.status == 200
    return await resp.json()


async def _finished(client: TestClient, auth: dict[str, str], meeting_id: str, timeout: float = 10) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        if (await _status(client, auth, meeting_id))["in_progress_sync_status"] is None:
            return await _result(client, auth, meeting_id)
        return None

    return await eventually(done, timeout)


def _crm_meetings(crm_app: web.Application) -> list[Any]:
    return list(crm_app[mock_keys.store].meetings.values())


async def test_meeting_crud_and_validation(backend: TestClient, auth: dict[str, str]) -> None:
    ann = await _user(backend, auth, "ann@example.com", synced=False)
    meeting = await _meeting(backend, auth, [ann["id"]])
    assert meeting["attendee_ids"] == [ann["id"]] and meeting["starts_at"] == "2026-12-01T15:00:00.000000Z"
    assert meeting["in_progress_sync_status"] is None and meeting["last_sync_success"] is None
    resp = await backend.patch(f"/meetings/{meeting['id']}", json={"title": "Renamed"}, headers=auth)
    assert resp.status == 200 and (await resp.json())["title"] == "Renamed"
    resp = await backend.put(f"/meetings/{meeting['id']}", json={**MEETING, "attendee_ids": []}, headers=auth)
    assert resp.status == 200 and (await resp.json())["attendee_ids"] == []
    listed = await (await backend.get("/meetings", headers=auth)).json()
    assert [m["id"] for m in listed["items"]] == [meeting["id"]]
    bad = [
        ({"starts_at": MEETING["starts_at"]}, "title"),
        ({"title": "x"}, "starts_at"),
        ({**MEETING, "starts_at": "tomorrow"}, "starts_at"),
        ({**MEETING, "ends_at": "2026-12-01T14:00:00Z"}, "ends_at"),
        ({**MEETING, "attendee_ids": "not-a-list"}, "attendee_ids"),
        ({**MEETING, "attendee_ids": ["5b1d7a56-0000-4000-8000-000000000000"]}, "attendee_ids"),
        ({**MEETING, "title": ""}, "title"),
        ({**MEETING, "room": "A"}, "room"),
    ]
    for body, field in bad:
        resp = await backend.post("/meetings", json=body, headers=auth)
        assert resp.status == 422, body
        assert field in (await resp.json())["fields"], body
    assert len((await (await backend.get("/meetings", headers=auth)).json())["items"]) == 1


async def test_another_accounts_meeting_is_not_found(backend: TestClient, auth: dict[str, str]) -> None:
    meeting = await _meeting(backend, auth, [])
    other = await sign_up(backend, "intruder@example.com")
    for method, suffix in [("GET", ""), ("PATCH", ""), ("PUT", ""), ("POST", "/sync"), ("GET", "/sync_status"),
                           ("GET", "/last_sync_success")]:  # fmt: skip
        resp = await backend.request(method, f"/meetings/{meeting['id']}{suffix}", json={"title": "x"}, headers=other)
        assert resp.status == 404, (method, suffix)
    assert (await (await backend.get("/meetings", headers=other)).json())["items"] == []
    assert (await backend.get(f"/meetings/{meeting['id']}/sync_status")).status == 401


async def test_sync_runs_the_three_stages_in_order(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    ann = await _user(backend, auth, "ann@example.com")
    bob = await _unsynced_user(backend, auth, crm, "bob@example.com")
    meeting = await _meeting(backend, auth, [ann["id"], bob["id"]])
    await set_faults(crm, latency_ms=150)
    resp = await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)
    assert resp.status == 202 and (await resp.json())["in_progress_sync_status"] == 1
    again = await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)  # not started twice
    assert again.status == 202 and (await again.json())["in_progress_sync_status"] in (1, 2)
    seen: list[Any] = []
    while not seen or seen[-1] is not None:
        state = (await _status(backend, auth, meeting["id"]))["in_progress_sync_status"]
        if not seen or seen[-1] != state:
            seen.append(state)
        await asyncio.sleep(0.02)
    assert seen == [1, 2, 3, None]
    result = await _result(backend, auth, meeting["id"])
    assert result["last_sync_success"] is True and result["last_sync_error"] is None and result["last_sync_at"]
    bob_now = await wait_status(backend, auth, bob["id"], "synced")
    [crm_meeting] = _crm_meetings(crm_app)
    assert crm_meeting.title == MEETING["title"] and crm_meeting.contact_ids == [ann["crm_id"], bob_now["crm_id"]]
    stages = (await (await backend.get(f"/meetings/{meeting['id']}", headers=auth)).json())["stages"]
    assert all(stages[s]["started_at"] <= stages[s]["finished_at"] for s in ("contacts", "meeting", "associations"))
    assert len(crm_records(crm_app)) == 2


@pytest.mark.parametrize("stage", [1, 2, 3])
async def test_a_rejected_stage_ends_the_run_with_a_message(
    backend: TestClient, auth: dict[str, str], crm: TestServer, stage: int
) -> None:
    if stage == 1:  # ann has no crm_id yet, so stage 1 creates her: that request will be rejected
        ann = await _unsynced_user(backend, auth, crm, "ann@example.com")
    else:
        ann = await _user(backend, auth, "ann@example.com")
    meeting = await _meeting(backend, auth, [ann["id"]])
    await set_faults(crm, latency_ms=300)
    await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)
    await eventually(lambda: _at_stage(backend, auth, meeting["id"], stage))
    await set_faults(crm, fail_next=1, fail_status=400, latency_ms=0)  # the request now waiting fails
    result = await _finished(backend, auth, meeting["id"])
    assert result["last_sync_success"] is False
    expected = {1: "The CRM rejected contact ann@example.com", 2: "The CRM rejected the meeting",
                3: "The CRM rejected the meeting"}[stage]  # fmt: skip
    assert result["last_sync_error"].startswith(expected)
    # A new sync can be started, and succeeds now.
    assert (await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)).status == 202
    assert (await _finished(backend, auth, meeting["id"]))["last_sync_success"] is True


async def _at_stage(client: TestClient, auth: dict[str, str], meeting_id: str, stage: int) -> bool:
    return (await _status(client, auth, meeting_id))["in_progress_sync_status"] == stage


async def test_a_transient_failure_is_retried_then_succeeds(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    ann = await _user(backend, auth, "ann@example.com")
    meeting = await _meeting(backend, auth, [ann["id"]])
    await set_faults(crm, fail_next=3, fail_status=503)
    await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)

    async def failed_once() -> bool:
        result = await _result(backend, auth, meeting["id"])
        return result["last_sync_success"] is False

    await eventually(failed_once)
    failed = await _result(backend, auth, meeting["id"])
    assert failed["last_sync_error"] == "The CRM could not be reached after 3 attempts (HTTP 503)."
    assert (await _finished(backend, auth, meeting["id"]))["last_sync_success"] is True
    assert len(_crm_meetings(crm_app)) == 1


@pytest.mark.parametrize("stage", [1, 2, 3])
async def test_a_restart_resumes_at_the_stage_it_was_in(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
    stage: int,
) -> None:
    first = await aiohttp_client(create_app(make_config(shutdown_timeout=0.1)))
    auth = await sign_up(first)
    if stage == 1:
        ann = await _unsynced_user(first, auth, crm, "ann@example.com")
    else:
        ann = await _user(first, auth, "ann@example.com")
    meeting = await _meeting(first, auth, [ann["id"]])
    # Slow enough that the stage's request is still waiting when the process stops.
    await set_faults(crm, latency_ms=300 if stage == 3 else 30_000)
    await first.post(f"/meetings/{meeting['id']}/sync", headers=auth)
    await eventually(lambda: _at_stage(first, auth, meeting["id"], stage))
    await first.close()
    await set_faults(crm, latency_ms=0)
    second = await aiohttp_client(create_app(make_config()))
    result = await _finished(second, auth, meeting["id"])
    assert result["last_sync_success"] is True
    crm_meetings = _crm_meetings(crm_app)
    assert len(crm_meetings) == 1 and len(crm_app[mock_keys.store].users) == 1
    assert crm_meetings[0].contact_ids == [
        crm_app[mock_keys.store].users[next(iter(crm_app[mock_keys.store].users))].crm_id
    ]


async def test_the_seed_curl_examples_via_the_scripts(backend: TestClient, auth: dict[str, str]) -> None:
    meeting = await _meeting(backend, auth, [])
    await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)
    await _finished(backend, auth, meeting["id"])
    env = {**os.environ, "CRMSYNC_URL": str(backend.make_url("")).rstrip("/"),
           "CRMSYNC_TOKEN": auth["Authorization"].split()[1]}  # fmt: skip
    outputs = []
    for script in ("meeting_sync_status.sh", "meeting_last_sync_success.sh"):
        process = await asyncio.create_subprocess_exec(
            str(ROOT / "scripts" / script), meeting["id"], env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        outputs.append(stdout.decode())
    assert "HTTP 200" in outputs[0] and '"in_progress_sync_status": null' in outputs[0]
    assert '"last_sync_success": true' in outputs[1]


async def test_delete_a_meeting(backend: TestClient, auth: dict[str, str]) -> None:
    ann = await _user(backend, auth, "ann@example.com", synced=False)
    meeting = await _meeting(backend, auth, [ann["id"]])
    other = await sign_up(backend, "intruder@example.com")
    assert (await backend.delete(f"/meetings/{meeting['id']}", headers=other)).status == 404  # not theirs
    assert (await backend.delete(f"/meetings/{meeting['id']}")).status == 401
    resp = await backend.delete(f"/meetings/{meeting['id']}", headers=auth)
    assert resp.status == 204, await resp.text()
    assert (await backend.get(f"/meetings/{meeting['id']}", headers=auth)).status == 404
    assert (await (await backend.get("/meetings", headers=auth)).json())["items"] == []
    again = await backend.delete(f"/meetings/{meeting['id']}", headers=auth)
    assert again.status == 404 and (await again.json())["error"] == "not_found"
    assert (await backend.delete("/meetings/not-a-uuid", headers=auth)).status == 404
    # The attendee is untouched.
    assert (await backend.get(f"/users/{ann['id']}", headers=auth)).status == 200


async def test_deleting_a_retrying_meeting_cancels_its_sync(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    # Retries 5 s apart: the stage waits long enough to be seen retrying, and to be deleted meanwhile.
    backend = await aiohttp_client(create_app(make_config(job_backoff=(5.0, 5.0))))
    auth = await sign_up(backend)
    ann = await _user(backend, auth, "ann@example.com")
    meeting = await _meeting(backend, auth, [ann["id"]])
    assert meeting["next_retry_at"] is None
    await set_faults(crm, fail_next=3, fail_status=503)  # every try of stage 2's request fails once
    await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)

    async def retrying() -> dict[str, Any] | None:
        current = await (await backend.get(f"/meetings/{meeting['id']}", headers=auth)).json()
        return current if current["next_retry_at"] else None

    current = await eventually(retrying)
    assert current["in_progress_sync_status"] == 2 and current["last_sync_success"] is False
    assert current["next_retry_at"] > current["stages"]["meeting"]["started_at"]
    assert (await backend.delete(f"/meetings/{meeting['id']}", headers=auth)).status == 204
    # The stage's job is gone with it: nothing queued for the meeting, and the CRM never gets it.
    assert await jobs.queued_count(backend.app[db_key]) == 0
    assert _crm_meetings(crm_app) == []
