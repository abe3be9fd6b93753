"""Nothing accepted is lost and both sides end equal: the faults a hostile run found, each reproduced."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import engine_key
from crmsync.store.jobs import MAX_CRASHES, USER_PUSH, Job
from crmsync.sync.outcomes import give_up
from crmsync.timeutil import isoformat, utcnow
from mock_crm import keys as mock_keys

from .conftest import (
    JOHN,
    LiveFactory,
    crm_call,
    crm_records,
    eventually,
    get_user,
    post_webhook,
    retrying,
    set_faults,
    sign_up,
    synced_user,
    wait_status,
)


async def agreed(client: TestClient, auth: dict[str, str], crm_app: web.Application, user_id: str) -> dict | None:
    """The user when it is synced and the CRM holds exactly its values, else None."""
    local = await get_user(client, auth, user_id)
    record = crm_records(crm_app).get(local["crm_id"] or "")
    if local["sync_status"] != "synced" or record is None:
        return None
    return (
        local if (record.name, record.email, record.phone) == (local["name"], local["email"], local["phone"]) else None
    )


async def conflicts(client: TestClient, auth: dict[str, str], user_id: str) -> list[dict[str, Any]]:
    """The conflicts in the user's history."""
    resp = await client.get(f"/users/{user_id}/history", headers=auth)
    return [item for item in (await resp.json())["items"] if item["type"] == "conflict"]


async def person_edits(crm: TestServer, crm_id: str, **fields: str) -> None:
    """Edit a CRM record as a person would (the mock sends a webhook with source "crm")."""
    status, body = await crm_call(crm, "POST", f"/crm/_admin/users/{crm_id}/edit", json=fields)
    assert status == 200, body


async def test_an_edit_made_after_a_lost_reply_is_not_taken_for_a_crm_change(make_live: LiveFactory) -> None:
    # The request-level retry waits 0.25-0.5 s: room for a second edit while the first push's fate is unknown.
    live = await make_live(crm_backoff=0.5)
    client, auth = live.backend, live.auth
    user = await synced_user(client, auth)
    record = crm_records(live.crm_app)[user["crm_id"]]
    await set_faults(live.crm, lost_reply_rate=1.0)
    assert (await client.patch(f"/users/{user['id']}", json={"name": "Anna A"}, headers=auth)).status == 200
    await eventually(lambda: record.name == "Anna A")  # applied by the CRM, its reply lost
    assert (await client.patch(f"/users/{user['id']}", json={"name": "Bella B"}, headers=auth)).status == 200
    await eventually(lambda: live.crm_app[mock_keys.stats].calls["GET /crm/users/{crm_id}"] >= 1)  # the 412 re-read
    await set_faults(live.crm, lost_reply_rate=0.0)
    final = await eventually(lambda: agreed(client, auth, live.crm_app, user["id"]))
    assert final["name"] == "Bella B" and record.name == "Bella B"
    assert await conflicts(client, auth, user["id"]) == []  # nobody edited the CRM: nothing to resolve


@pytest.mark.slow
async def test_chaos_no_accepted_edit_is_lost(make_live: LiveFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """50 users edited locally (names) and in the CRM (phones) for 30 s under 5xx and lost replies."""
    live = await make_live(workers=8, crm_backoff=0.5, job_backoff=(0.2, 0.4, 0.8, 1.6, 3.2), reconcile_interval=2.0)
    client, auth, crm = live.backend, live.auth, live.crm
    users = [await synced_user(client, auth, email=f"chaos{i}@example.com") for i in range(50)]
    await set_faults(crm, failure_rate=0.2, lost_reply_rate=0.1, latency_ms=10)
    last_name: dict[str, str] = {}  # user id -> the last local name answered 200
    last_phone: dict[str, str] = {}  # crm_id -> the last phone a person set in the CRM
    counts = {"local": 0, "crm": 0}
    deadline = time.monotonic() + 30

    async def local_editor(task: int, mine: list[dict[str, Any]]) -> None:
        rng, n = random.Random(task), 0
        while time.monotonic() < deadline:
            user, n = rng.choice(mine), n + 1
            resp = await client.patch(f"/users/{user['id']}", json={"name": f"Local {task} {n}"}, headers=auth)
            assert resp.status == 200, await resp.text()
            last_name[user["id"]] = f"Local {task} {n}"
            counts["local"] += 1
            await asyncio.sleep(rng.uniform(0.01, 0.1))  # pacing the load, not waiting for an outcome

    async def person(task: int, mine: list[dict[str, Any]]) -> None:
        rng, n = random.Random(100 + task), 0
        while time.monotonic() < deadline:
            user, n = rng.choice(mine), n + 1
            phone = f"555-{task}{n:06d}"
            await person_edits(crm, user["crm_id"], phone=phone)
            last_phone[user["crm_id"]] = phone
            counts["crm"] += 1
            await asyncio.sleep(rng.uniform(0.05, 0.2))

    shares = [users[i::5] for i in range(5)]
    await asyncio.gather(
        *(local_editor(i, s) for i, s in enumerate(shares)), *(person(i, s) for i, s in enumerate(shares))
    )
    await set_faults(crm, failure_rate=0.0, lost_reply_rate=0.0, latency_ms=0)

    async def all_agreed() -> list[dict[str, Any]] | None:
        finals = [await agreed(client, auth, live.crm_app, user["id"]) for user in users]
        return finals if all(finals) else None

    finals = await eventually(all_agreed, timeout=60, interval=0.5)
    lost_local = sum(1 for f in finals if f["id"] in last_name and f["name"] != last_name[f["id"]])
    lost_crm = sum(1 for f in finals if f["crm_id"] in last_phone and f["phone"] != last_phone[f["crm_id"]])
    stats = live.crm_app[mock_keys.stats]
    with capsys.disabled():
        print(
            f"\nedit chaos: local edits accepted {counts['local']}, lost {lost_local}; CRM edits {counts['crm']}, "
            f"lost {lost_crm}; pairs converged {len(finals)}/50; injected 5xx {stats.injected_failures}, "
            f"lost replies {stats.lost_replies}"
        )
    assert lost_local == 0 and lost_crm == 0


async def test_a_webhook_stamped_in_the_future_cannot_outrank_a_record_read_from_the_crm(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    user = await synced_user(backend, auth)
    future = isoformat(utcnow() + timedelta(seconds=290))
    event = {"crm_id": user["crm_id"], "updated_fields": {"name": "From The Future"}, "timestamp": future}
    assert (await post_webhook(backend, event))[0] == 200
    await person_edits(crm, user["crm_id"], name="Real Person")  # no webhook reaches this backend
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 200, await resp.text()
    local = await get_user(backend, auth, user["id"])
    assert local["name"] == "Real Person" == crm_records(crm_app)[user["crm_id"]].name


@pytest.mark.parametrize("ahead", [15, 290])
async def test_a_crm_edit_after_a_future_stamped_webhook_still_arrives(live: Any, ahead: int) -> None:
    user = await synced_user(live.backend, live.auth)
    future = isoformat(utcnow() + timedelta(seconds=ahead))
    event = {"crm_id": user["crm_id"], "updated_fields": {"name": "From The Future"}, "timestamp": future}
    assert (await post_webhook(live.backend, event))[0] == 200
    await person_edits(live.crm, user["crm_id"], name="Real Person")
    final = await eventually(lambda: agreed(live.backend, live.auth, live.crm_app, user["id"]))
    assert final["name"] == "Real Person"


async def test_users_swapping_emails_through_a_temporary_one_converge(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(crm_backoff=0.5)))
    auth = await sign_up(client)
    x = await synced_user(client, auth, email="x@example.com")
    y = await synced_user(client, auth, email="y@example.com")
    await set_faults(crm, fail_next=1, fail_status=503)  # X's move to tmp is held up by one retry...
    assert (await client.patch(f"/users/{x['id']}", json={"email": "tmp@example.com"}, headers=auth)).status == 200
    await eventually(lambda: crm_app[mock_keys.stats].injected_failures == 1)
    # ...so Y's move to X's old address reaches the CRM while X still holds it there.
    assert (await client.patch(f"/users/{y['id']}", json={"email": "x@example.com"}, headers=auth)).status == 200
    assert (await client.patch(f"/users/{x['id']}", json={"email": "y@example.com"}, headers=auth)).status == 200
    final_x = await eventually(lambda: agreed(client, auth, crm_app, x["id"]))
    final_y = await eventually(lambda: agreed(client, auth, crm_app, y["id"]))
    assert (final_x["email"], final_y["email"]) == ("y@example.com", "x@example.com")


async def test_a_swap_the_outbox_coalesced_into_a_cycle_still_converges(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(job_backoff=(2.0,) * 5)))
    auth = await sign_up(client)
    x = await synced_user(client, auth, email="x@example.com")
    y = await synced_user(client, auth, email="y@example.com")
    await set_faults(crm, fail_next=3, fail_status=503)  # X's whole first push fails: tmp never reaches the CRM
    assert (await client.patch(f"/users/{x['id']}", json={"email": "tmp@example.com"}, headers=auth)).status == 200
    await eventually(lambda: retrying(client, auth, x["id"]))
    assert (await client.patch(f"/users/{y['id']}", json={"email": "x@example.com"}, headers=auth)).status == 200
    assert (await client.patch(f"/users/{x['id']}", json={"email": "y@example.com"}, headers=auth)).status == 200
    # X now wants Y's address and Y wants X's, in the CRM: one of them has to step aside first.
    final_x = await eventually(lambda: agreed(client, auth, crm_app, x["id"]), timeout=20)
    final_y = await eventually(lambda: agreed(client, auth, crm_app, y["id"]), timeout=20)
    assert (final_x["email"], final_y["email"]) == ("y@example.com", "x@example.com")
    assert len(crm_records(crm_app)) == 2


async def test_a_batch_answered_with_ids_linked_elsewhere_fails_each_item_clearly(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
) -> None:
    client = await aiohttp_client(create_app(make_config(workers=1)))
    auth = await sign_up(client)
    first = await synced_user(client, auth)
    # The CRM merges every new contact into the newest one it has: the first user's record.
    await set_faults(crm, merge_creates_next=10, latency_ms=300)
    ids = []
    for i in range(4):  # the first goes alone (slowly); the other three queue behind it and go as one batch
        resp = await client.post("/users", json={**JOHN, "email": f"m{i}@example.com"}, headers=auth)
        ids.append((await resp.json())["id"])
    await set_faults(crm, latency_ms=0)
    for user_id in ids:
        user = await wait_status(client, auth, user_id, "failed")
        assert user["next_retry_at"] is None and "already linked to another user" in user["last_error"]
    stats = crm_app[mock_keys.stats]
    assert stats.calls["POST /crm/users/batch"] == 1 and stats.calls["POST /crm/users"] == 1 + 1
    assert (await get_user(client, auth, first["id"]))["crm_id"] == first["crm_id"]


@pytest.mark.parametrize(
    ("field", "in_crm", "agreed_value"),
    [("email", "Mixed.Case@Example.COM", "mixed.case@example.com"), ("name", "  Padded Name  ", "Padded Name"),
     ("email", "ÜNICODE@example.com", "ünicode@example.com")],
)  # fmt: skip
async def test_crm_values_we_normalise_end_equal_on_both_sides(
    live: Any, field: str, in_crm: str, agreed_value: str
) -> None:
    user = await synced_user(live.backend, live.auth)
    await person_edits(live.crm, user["crm_id"], **{field: in_crm})
    final = await eventually(lambda: agreed(live.backend, live.auth, live.crm_app, user["id"]))
    assert final[field] == agreed_value


async def test_a_job_that_keeps_crashing_is_failed_with_its_error_and_an_alert(
    backend: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    engine = backend.app[engine_key]
    runs: list[int] = []

    async def broken(_: Any, job: Job) -> None:  # a bug in a handler, as the engine sees one
        runs.append(job.id)
        raise RuntimeError("a bug")

    engine.register(USER_PUSH, broken, give_up=give_up)
    resp = await backend.post("/users", json=JOHN, headers=auth)
    user = await wait_status(backend, auth, (await resp.json())["id"], "failed")
    assert user["next_retry_at"] is None and "unexpected error" in user["last_error"]
    assert len(runs) == MAX_CRASHES
    events = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("ERROR", "job_failed_after_crashes") in events and ("ERROR", "sync_failed_permanently") in events
