"""Recovery when the CRM lost records: the full reconcile, on demand, by script and on the cluster's timer."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key, engine_key
from crmsync.timeutil import parse_iso
from mock_crm.app import create_app as create_mock_app
from mock_crm.config import MockConfig

from .conftest import JOHN, crm_call, eventually, get_user, set_faults, sign_up, synced_user, wait_status
from .test_lifecycle import DELETED_IN_CRM, run_script

MakeServer = Callable[..., Awaitable[TestServer]]


async def restart_empty(crm: TestServer, aiohttp_server: MakeServer, mock_config: MockConfig) -> TestServer:
    """Stop the mock CRM and start a new one on the same port: it keeps nothing (and signs tokens anew)."""
    port = crm.port
    await crm.close()
    return await aiohttp_server(create_mock_app(mock_config), port=port)


async def people_add(crm: TestServer, count: int, prefix: str) -> None:
    """Contacts added in the CRM that nobody here knows of, a hundred per request."""
    for start in range(0, count, 100):
        items = [{**JOHN, "email": f"{prefix}{i}@example.com"} for i in range(start, min(count, start + 100))]
        status, body = await crm_call(crm, "POST", "/crm/users/batch", json={"items": items})
        assert status == 200 and {r["status"] for r in body["results"]} == {201}


async def listed(client: TestClient, auth: dict[str, str], count: int) -> bool:
    """True when the contacts list holds exactly `count` users, with distinct emails."""
    items = (await (await client.get("/users?limit=500", headers=auth)).json())["items"]
    return len(items) == count == len({item["email"] for item in items})


async def lost_users(client: TestClient, auth: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Synced users whose records the CRM is about to lose."""
    return [await synced_user(client, auth, email=f"lost{i}@example.com") for i in range(count)]


async def assert_deleted_in_crm(client: TestClient, auth: dict[str, str], lost: list[dict[str, Any]]) -> None:
    for user in lost:
        current = await get_user(client, auth, user["id"])
        assert (current["sync_status"], current["last_error"], current["crm_id"]) == ("failed", DELETED_IN_CRM, None)
        assert current["deleted_in_crm"] == {"crm_id": user["crm_id"]}
        history = (await (await client.get(f"/users/{user['id']}/history", headers=auth)).json())["items"]
        assert [item["crm_id"] for item in history if item.get("event") == "deleted_in_crm"] == [user["crm_id"]]


async def test_after_the_crm_restarts_empty_a_full_reconcile_finds_every_lost_record_in_pages(
    backend: TestClient, auth: dict[str, str], crm: TestServer, aiohttp_server: MakeServer, mock_config: MockConfig
) -> None:
    lost = await lost_users(backend, auth, 3)
    crm = await restart_empty(crm, aiohttp_server, mock_config)
    await people_add(crm, 150, "new")  # two pages of the CRM's listing, none of them known here
    # A sweep of changes reads the new contacts in, but cannot see what is gone: the lost still say synced.
    assert (await backend.post("/reconcile", headers=auth)).status == 202
    await eventually(lambda: listed(backend, auth, 153))
    assert {(await get_user(backend, auth, user["id"]))["sync_status"] for user in lost} == {"synced"}
    token = auth["Authorization"].split()[1]
    async with backend.ws_connect(f"/events?token={token}") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        resp = await backend.post("/reconcile?full=true", headers=auth)
        assert resp.status == 202 and (await resp.json())["status"] == "started"
        progress = []
        async with asyncio.timeout(30):
            while not progress or progress[-1]["state"] != "done":
                event = await ws.receive_json()
                if event["type"] == "scan" and event["scan"] == "full_reconcile":
                    progress.append(event)
    pages = [event["pages"] for event in progress if event["state"] == "running"]
    assert pages[:3] == [0, 1, 2] and pages == sorted(pages)  # one as it starts, then one per page read
    assert progress[-1]["counts"]["missing"] == 3 and progress[-1]["counts"]["seen"] == 150
    status = await (await backend.get("/reconcile", headers=auth)).json()
    assert status["state"] == "done" and status["counts"] == progress[-1]["counts"]
    await assert_deleted_in_crm(backend, auth, lost)
    assert await listed(backend, auth, 153)  # nothing doubled


async def test_the_script_runs_a_full_reconcile_after_the_crm_lost_its_records(
    backend: TestClient, auth: dict[str, str], crm: TestServer, aiohttp_server: MakeServer, mock_config: MockConfig
) -> None:
    lost = await lost_users(backend, auth, 2)
    await restart_empty(crm, aiohttp_server, mock_config)
    status, out, err = await run_script(backend, auth, "reconcile_user.sh", "--full")
    assert status == 0, err
    result = json.loads(out)
    assert result["state"] == "done" and result["counts"]["missing"] == 2
    assert "full_reconcile" in err  # the progress line
    await assert_deleted_in_crm(backend, auth, lost)
    # Started again, its status is the new reconcile's from the first answer on, not the last one's result.
    started = (await (await backend.post("/reconcile?full=true", headers=auth)).json())["scan"]
    assert started["state"] == "running" and started["started_at"] > result["finished_at"]
    assert started["pages"] == 0 and started["counts"] == {}
    await eventually(lambda: _done(lambda: _json(backend.get("/reconcile", headers=auth))))
    status, out, err = await run_script(backend, auth, "reconcile_user.sh", "--full")
    assert status == 0, err
    again = json.loads(out)
    assert again["state"] == "done" and again["started_at"] > result["finished_at"]
    assert again["counts"].get("missing", 0) == 0  # the lost contacts are unlinked now: nothing left to find


async def test_with_on_crm_delete_delete_a_full_reconcile_deletes_lost_contacts_here(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    aiohttp_server: MakeServer,
    mock_config: MockConfig,
) -> None:
    client = await aiohttp_client(create_app(make_config(on_crm_delete="delete")))
    auth = await sign_up(client)
    lost = await lost_users(client, auth, 2)
    await restart_empty(crm, aiohttp_server, mock_config)
    assert (await client.post("/reconcile?full=true", headers=auth)).status == 202
    for user in lost:
        await eventually(lambda u=user: _gone(client, auth, u["id"]))


async def _gone(client: TestClient, auth: dict[str, str], user_id: str) -> bool:
    return (await client.get(f"/users/{user_id}", headers=auth)).status == 404


INTERVAL = 0.5


async def test_the_timer_runs_the_full_reconcile_on_one_replica_at_a_time_once_per_interval(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    aiohttp_server: MakeServer,
    mock_config: MockConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.sync")
    # Two replicas on one database, each with the timer on.
    first, second = [await aiohttp_client(create_app(make_config(full_reconcile_interval=INTERVAL))) for _ in "ab"]
    auth = await sign_up(first)
    lost = await lost_users(first, auth, 2)
    await restart_empty(crm, aiohttp_server, mock_config)
    # Nobody asks: the timer finds the lost records by itself.
    for user in lost:
        await wait_status(second, auth, user["id"], "failed", timeout=30)
    await assert_deleted_in_crm(second, auth, lost)

    def runs() -> list[tuple[str, float, float]]:
        """(replica, started, done) of every full reconcile so far, by start."""
        started: dict[str, float] = {}
        found = []
        for record in caplog.records:
            if getattr(record, "scan", None) != "full_reconcile":
                continue
            if record.getMessage() == "scan_started":
                started[record.replica_id] = record.created  # type: ignore[attr-defined]
            elif record.getMessage() == "scan_done":
                found.append((record.replica_id, started.pop(record.replica_id), record.created))  # type: ignore[attr-defined]
        return sorted(found, key=lambda run: run[1])

    done = await eventually(lambda: len(runs()) >= 5 and runs(), timeout=30)
    for before, after in itertools.pairwise(done):
        assert after[1] >= before[2]  # never two at once
    # The turns, by the database's clock at which each was taken: one per interval for the whole cluster.
    turns = sorted(parse_iso(r.at) for r in caplog.records if r.getMessage() == "full_reconcile_due")  # type: ignore[attr-defined]
    assert len(turns) >= 5
    for before, after in itertools.pairwise(turns):
        assert (after - before).total_seconds() >= INTERVAL - 0.05  # clocks of two pools may differ by a hair


async def test_a_full_reconcile_stopped_by_a_crm_outage_resumes_by_itself(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(full_reconcile_interval=3600, full_reconcile_tick=0.2)))
    auth = await sign_up(client)
    await synced_user(client, auth)
    await set_faults(crm, failure_rate=1.0)
    assert (await client.post("/reconcile?full=true", headers=auth)).status == 202

    async def state() -> dict[str, Any]:
        return await (await client.get("/reconcile", headers=auth)).json()

    stopped = await eventually(lambda: _with_error(state))
    assert stopped["state"] == "running"
    await set_faults(crm, failure_rate=0.0)  # nobody asks again: the timer's next look resumes it
    done = await eventually(lambda: _done(state), timeout=30)
    assert done["counts"]["seen"] == 1 and done["counts"].get("missing", 0) == 0


async def _with_error(state: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | None:
    current = await state()
    return current if current.get("error") else None


async def _done(state: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | None:
    current = await state()
    return current if current["state"] == "done" else None


async def _json(request: Awaitable[Any]) -> dict[str, Any]:
    return await (await request).json()


async def test_many_starts_on_two_replicas_at_once_run_one_full_reconcile(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    first, second = [await aiohttp_client(create_app(make_config())) for _ in "ab"]
    auth = await sign_up(first)
    await synced_user(first, auth)
    await set_faults(crm, latency_ms=300)  # the scan's first page takes a while: the starts all overlap it

    async def start(client: TestClient) -> str:
        resp = await client.post("/reconcile?full=true", headers=auth)
        assert resp.status == 202
        return str((await resp.json())["status"])

    answers = await asyncio.gather(*(start(client) for client in (first, second) * 5))
    assert sorted(answers) == ["already_running"] * 9 + ["started"]
    await set_faults(crm, latency_ms=0)
    done = await eventually(lambda: _done(lambda: _json(first.get("/reconcile", headers=auth))), timeout=30)
    assert done["counts"]["seen"] == 1 and done["pages"] == 1


async def test_a_full_reconcile_whose_replica_stops_is_resumed_by_another_from_its_page(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.sync.scans")
    first = await aiohttp_client(create_app(make_config()))
    second = await aiohttp_client(create_app(make_config(full_reconcile_interval=3600, full_reconcile_tick=0.2)))
    auth = await sign_up(first)
    await people_add(crm, 250, "many")  # three pages
    await set_faults(crm, latency_ms=300)
    assert (await first.post("/reconcile?full=true", headers=auth)).status == 202
    await eventually(lambda: _paged(second, auth), timeout=30)
    await first.close()  # the replica running it stops half-way
    await set_faults(crm, latency_ms=0)
    done = await eventually(lambda: _done(lambda: _json(second.get("/reconcile", headers=auth))), timeout=30)
    assert done["counts"]["seen"] == 250 and done["pages"] == 3
    resumed = [r for r in caplog.records if r.getMessage() == "scan_started" and r.resumed_at_page > 0]  # type: ignore[attr-defined]
    assert resumed and resumed[0].replica_id == second.app[engine_key].replica_id  # type: ignore[attr-defined]


async def _paged(client: TestClient, auth: dict[str, str]) -> bool:
    status = await _json(client.get("/reconcile", headers=auth))
    return status["state"] == "running" and status["pages"] >= 1


async def test_the_timers_schedule_outlives_the_replica_that_armed_it(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.sync")
    config = make_config(full_reconcile_interval=4.0, full_reconcile_tick=0.1)
    first = await aiohttp_client(create_app(config))
    read_due = "SELECT value FROM checkpoints WHERE name = 'timer:full_reconcile'"
    due = parse_iso(await eventually(lambda: first.app[db_key].fetchval(read_due)))
    await first.close()  # the replica that armed the timer goes (a deploy), shortly before the turn is due
    await eventually(lambda: datetime.now(UTC) > due - timedelta(seconds=1), timeout=10)
    second = await aiohttp_client(create_app(config))

    def turn() -> logging.LogRecord | None:
        return next((r for r in caplog.records if r.getMessage() == "full_reconcile_due"), None)

    taken = await eventually(turn, timeout=15)
    assert taken.replica_id == second.app[engine_key].replica_id
    # The turn came when the cluster's timer said, not a whole interval after the new replica started.
    assert due <= parse_iso(taken.at) < due + timedelta(seconds=2)
