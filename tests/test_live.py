"""Live status over /events, Prometheus /metrics, and the health probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.events import QUEUE_SIZE, EventBus

from .conftest import JOHN, NewDatabase, set_faults, sign_up, wait_status


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str, predicate: Callable[[dict], bool] = bool) -> dict:
    """The next event of a kind that matches, within a deadline."""
    async with asyncio.timeout(10):
        while True:
            event = await ws.receive_json()
            if event["type"] == kind and predicate(event):
                return event


async def test_events_stream_a_users_sync_as_it_happens(backend: TestClient, auth: dict[str, str]) -> None:
    token = auth["Authorization"].split()[1]
    async with backend.ws_connect(f"/events?token={token}") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        resp = await backend.post("/users", json=JOHN, headers=auth)
        user_id = (await resp.json())["id"]
        pending = await _next(ws, "user", lambda e: e["user"]["id"] == user_id)
        assert pending["user"]["sync_status"] == "pending"
        synced = await _next(ws, "user", lambda e: e["user"]["sync_status"] == "synced")
        assert synced["user"]["id"] == user_id and synced["user"]["crm_id"]


async def test_the_token_may_come_as_the_first_message(backend: TestClient, auth: dict[str, str]) -> None:
    async with backend.ws_connect("/events") as ws:
        await ws.send_json({"token": auth["Authorization"].split()[1]})
        assert (await ws.receive_json())["type"] == "hello"


@pytest.mark.parametrize("how", ["query", "message", "garbage message"])
async def test_a_bad_token_closes_with_4401(backend: TestClient, how: str) -> None:
    url = "/events?token=not-a-token" if how == "query" else "/events"
    async with backend.ws_connect(url) as ws:
        if how == "message":
            await ws.send_json({"token": "not-a-token"})
        elif how == "garbage message":
            await ws.send_str("{{{")
        message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 4401


async def test_meeting_stages_reach_only_their_owner(backend: TestClient, auth: dict[str, str]) -> None:
    other = await sign_up(backend, "other@example.com")
    meeting = await (await backend.post(
        "/meetings", json={"title": "Kick-off", "starts_at": "2026-12-01T10:00:00Z"}, headers=auth
    )).json()  # fmt: skip
    async with (
        backend.ws_connect(f"/events?token={auth['Authorization'].split()[1]}") as mine,
        backend.ws_connect(f"/events?token={other['Authorization'].split()[1]}") as theirs,
    ):
        await mine.receive_json()
        await theirs.receive_json()
        await backend.post(f"/meetings/{meeting['id']}/sync", headers=auth)
        stages = []
        while not stages or stages[-1] is not None:
            event = await _next(mine, "meeting")
            stages.append(event["meeting"]["in_progress_sync_status"])
        assert stages[0] == 1 and stages[-1] is None and stages == [*sorted(stages[:-1]), None]
        await theirs.send_str("still there?")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await theirs.receive_json()  # nothing about someone else's meeting


def test_a_slow_subscriber_is_told_to_reload_and_never_blocks() -> None:
    bus = EventBus()
    slow = bus.subscribe("account")
    for i in range(QUEUE_SIZE + 50):
        bus.publish({"type": "user", "n": i})  # returns at once even though nobody reads
    assert slow.overflowed and slow.queue.get_nowait()["type"] == "reload"


async def test_metrics_count_what_happened(backend: TestClient, auth: dict[str, str], crm: TestServer) -> None:
    await set_faults(crm, fail_next=1, fail_status=503)
    user = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    await wait_status(backend, auth, user["id"], "synced")
    resp = await backend.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    values = _samples(text)
    assert values['crmsync_users{sync_status="synced"}'] == 1
    assert values['crmsync_sync_attempts_total{outcome="ok"}'] == 1
    assert values['crmsync_sync_attempts_total{outcome="http_error"}'] == 1
    assert values['crmsync_crm_requests_total{status="503"}'] == 1
    assert values['crmsync_retries_total{level="request"}'] == 1
    assert values['crmsync_syncs_total{result="synced"}'] == 1
    assert values["crmsync_queue_depth"] == 0
    assert values["crmsync_sync_duration_seconds_count"] == 1


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_health_and_readiness(
    backend: TestClient,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    unused_tcp_port: int,
    new_database: NewDatabase,
) -> None:
    assert (await backend.get("/healthz")).status == 200
    ready = await backend.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"] == {"database": "ok", "crm": "ok"}
    nowhere = make_config(
        crm_url=f"http://127.0.0.1:{unused_tcp_port}", database_url=await new_database(), crm_attempts=1
    )
    lonely = await aiohttp_client(create_app(nowhere))
    resp = await lonely.get("/readyz")
    body = await resp.json()
    # A CRM that cannot be reached is reported, not fatal: the outbox still takes writes durably.
    assert resp.status == 200 and body["status"] == "degraded" and body["checks"]["database"] == "ok"
    assert (
        body["checks"]["crm"]
        == "failed: The CRM could not be reached after 1 attempts (connection refused or unreachable)."
    )
