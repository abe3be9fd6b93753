"""A hostile CRM: rate limits, scripted and random faults, lost replies, alerts. Nothing lost or doubled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from email.message import Message
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller

from crmsync.app import create_app
from crmsync.config import Config, SmtpConfig
from mock_crm import keys as mock_keys

from .conftest import JOHN, crm_records, eventually, get_user, set_faults, sign_up, wait_status


async def _create_many(client: TestClient, auth: dict[str, str], count: int, prefix: str = "u") -> list[str]:
    semaphore = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with semaphore:
            resp = await client.post("/users", json={**JOHN, "email": f"{prefix}{i}@example.com"}, headers=auth)
            assert resp.status == 201
            return (await resp.json())["id"]

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _count_by_status(client: TestClient, auth: dict[str, str], status: str) -> int:
    total, cursor = 0, ""
    while True:
        page = await (await client.get(f"/users?sync_status={status}&limit=500{cursor}", headers=auth)).json()
        total += len(page["items"])
        if not page["next_cursor"]:
            return total
        cursor = f"&cursor={page['next_cursor']}"


async def test_a_backlog_drains_at_the_rate_limit_with_few_429s(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    await set_faults(crm, rate_limit=20, rate_burst=20)
    await _create_many(backend, auth, 60)
    await eventually(lambda: _all_synced(backend, auth, 60), timeout=20)
    stats = crm_app[mock_keys.stats]
    requests = stats.calls["POST /crm/users"] + stats.calls["POST /crm/users/batch"]
    assert stats.rate_limited <= max(1, 0.05 * requests)
    assert await _count_by_status(backend, auth, "failed") == 0


async def _all_synced(client: TestClient, auth: dict[str, str], count: int) -> bool:
    return await _count_by_status(client, auth, "synced") == count


async def test_a_429_is_waited_out_without_using_an_attempt(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(crm_attempts=1)))
    auth = await sign_up(client)
    await set_faults(crm, fail_next=2, fail_status=429)
    resp = await client.post("/users", json=JOHN, headers=auth)
    synced = await wait_status(client, auth, (await resp.json())["id"], "synced")
    assert synced["sync_attempts"] == 3
    history = (await (await client.get(f"/users/{synced['id']}/history", headers=auth)).json())["items"]
    assert [h["outcome"] for h in history] == ["ok", "rate_limited", "rate_limited"]


async def test_waiting_on_429s_is_bounded(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(crm_max_rate_wait=0.5)))
    auth = await sign_up(client)
    await set_faults(crm, fail_next=1, fail_status=429)
    resp = await client.post("/users", json=JOHN, headers=auth)
    user_id = (await resp.json())["id"]

    async def failed() -> dict[str, Any] | None:
        user = await get_user(client, auth, user_id)
        return user if user["sync_status"] == "failed" else None

    user = await eventually(failed)
    assert "rate-limiting" in user["last_error"] and user["next_retry_at"]


async def test_a_lost_reply_never_makes_a_second_record(
    backend: TestClient, auth: dict[str, str], crm: TestServer, crm_app: web.Application
) -> None:
    await set_faults(crm, lost_reply_rate=1.0)
    user_id = (await (await backend.post("/users", json=JOHN, headers=auth)).json())["id"]

    async def failed_after_a_round() -> bool:
        return (await get_user(backend, auth, user_id))["sync_status"] == "failed"

    await eventually(failed_after_a_round)
    assert len(crm_records(crm_app)) == 1  # applied, though every reply was lost
    await set_faults(crm, lost_reply_rate=0.0)
    synced = await wait_status(backend, auth, user_id, "synced")
    assert list(crm_records(crm_app)) == [synced["crm_id"]]
    assert crm_app[mock_keys.stats].calls["POST /crm/users"] >= 4


async def test_sync_failed_requeues_every_failed_user(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await aiohttp_client(create_app(make_config(job_retries=0)))
    auth = await sign_up(client)
    await set_faults(crm, failure_rate=1.0)
    ids = await _create_many(client, auth, 3)
    await eventually(lambda: _count_by_status_is(client, auth, "failed", 3))
    for user_id in ids:
        assert (await get_user(client, auth, user_id))["next_retry_at"] is None  # final: waits for a person
    await set_faults(crm, failure_rate=0.0)
    resp = await client.post("/users/sync-failed", headers=auth)
    assert resp.status == 202 and (await resp.json()) == {"queued": 3}
    for user_id in ids:
        await wait_status(client, auth, user_id, "synced")


async def _count_by_status_is(client: TestClient, auth: dict[str, str], status: str, count: int) -> bool:
    return await _count_by_status(client, auth, status) == count


class _Inbox:
    """An SMTP handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(unused_tcp_port_factory: Callable[[], int]) -> Iterator[tuple[_Inbox, int]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), collecting mail."""
    inbox, port = _Inbox(), unused_tcp_port_factory()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_a_final_failure_mails_an_alert(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    smtp: tuple[_Inbox, int],
) -> None:
    inbox, port = smtp
    mail = SmtpConfig(host="127.0.0.1", port=port, sender="crmsync@example.com", recipients=("ops@example.com",))
    client = await aiohttp_client(create_app(make_config(smtp=mail)))
    auth = await sign_up(client)
    await set_faults(crm, fail_next=1, fail_status=400)
    user_id = (await (await client.post("/users", json=JOHN, headers=auth)).json())["id"]
    [message] = await eventually(lambda: inbox.messages)
    assert message["To"] == "ops@example.com" and user_id in message["Subject"]
    text = message.get_payload()
    assert user_id in text and JOHN["email"] in text and "The CRM rejected the contact" in text


async def test_a_failing_alert_never_holds_up_the_engine(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    unused_tcp_port: int,
) -> None:
    nowhere = SmtpConfig(host="127.0.0.1", port=unused_tcp_port, recipients=("ops@example.com",))
    client = await aiohttp_client(create_app(make_config(smtp=nowhere)))
    auth = await sign_up(client)
    await set_faults(crm, fail_next=1, fail_status=400)
    first = (await (await client.post("/users", json=JOHN, headers=auth)).json())["id"]
    await wait_status(client, auth, first, "failed")
    second = (await (await client.post("/users", json={**JOHN, "email": "b@example.com"}, headers=auth)).json())["id"]
    await wait_status(client, auth, second, "synced")


@pytest.mark.slow
async def test_chaos_every_user_synced_exactly_once(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    crm_app: web.Application,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = await aiohttp_client(create_app(make_config(workers=8, job_backoff=(0.2, 0.4, 0.8, 1.6, 3.2))))
    auth = await sign_up(client)
    await set_faults(crm, failure_rate=0.3, lost_reply_rate=0.1, latency_ms=20, rate_limit=50, rate_burst=50)
    started = time.monotonic()
    ids = await _create_many(client, auth, 500, prefix="chaos")
    await eventually(lambda: _all_synced(client, auth, 500), timeout=120, interval=0.5)
    elapsed = time.monotonic() - started
    records = crm_records(crm_app)
    emails = [r.email for r in records.values()]
    stats = crm_app[mock_keys.stats]
    with capsys.disabled():  # the counts belong in the run's output, pass or fail
        print(
            f"\nchaos: {len(ids)} users synced in {elapsed:.1f} s; CRM records {len(records)}, distinct emails "
            f"{len(set(emails))}; injected 503s {stats.injected_failures}, lost replies {stats.lost_replies}, "
            f"429s {stats.rate_limited}, creates {stats.calls['POST /crm/users']} single and "
            f"{stats.calls['POST /crm/users/batch']} batch requests"
        )
    assert len(records) == 500 and len(set(emails)) == 500
    crm_ids = {(await get_user(client, auth, user_id))["crm_id"] for user_id in ids}
    assert crm_ids == set(records)
