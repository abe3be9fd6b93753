"""What only real concurrency shows, on both engines: racing transactions end as some serial order would.

Every race here is real: many requests in flight at once against running apps over HTTP, pushes on the
wire meanwhile, several app instances (or processes) on one database. Nothing calls internal functions in
a chosen order to imitate a race.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key
from crmsync.store import engines
from crmsync.store.database import Database
from crmsync.store.migrations import postgres as pg_migrations
from crmsync.store.migrations import sqlite as sqlite_migrations
from crmsync.timeutil import now_iso
from mock_crm import keys as mock_keys

from .app_process import AppProcess, crmsync_env
from .conftest import (
    JOHN,
    LiveFactory,
    NewDatabase,
    crm_call,
    crm_records,
    eventually,
    get_user,
    post_webhook,
    set_faults,
    sign_webhook,
    synced_user,
)

Replica = Callable[[], Awaitable[TestClient]]
EDITS, PERSON_EDITS = 60, 60  # per local editor; by the person in the CRM
ROUNDS = 10  # of changes to many users at once
PHONE = "555-{:07d}"  # the person's nth phone
# The user's row beside its outbox job, read in one statement (one snapshot on either engine).
USER_AND_JOB = (
    "SELECT u.sync_status, j.state, u.name, u.email, u.phone FROM users u LEFT JOIN sync_jobs j"
    " ON j.kind = 'user_push' AND j.entity_id = u.id WHERE u.id = $1"
)


@pytest.fixture
def make_replica(aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config]) -> Replica:
    """Another backend on the test's database: a second process's transactions, served from this one."""

    async def build() -> TestClient:
        return await aiohttp_client(create_app(make_config()))

    return build


def expected_versions(engine: str) -> list[int]:
    """Every schema version of the engine, once each, in order."""
    migrations = pg_migrations.MIGRATIONS if engine == "postgres" else sqlite_migrations.MIGRATIONS
    return [version for version, _ in migrations]


async def schema_versions(db: Database) -> list[int]:
    return [row[0] for row in await db.fetch("SELECT version FROM schema_version ORDER BY version")]


def phone_number(phone: str) -> int:
    """Which of the person's phones this is (-1: the one the user was created with)."""
    return int(phone.removeprefix("555-")) if phone.startswith("555-") else -1


async def deliver(client: TestClient, event: dict[str, Any], msg_id: str) -> str:
    """POST a signed webhook as a sender does: again (same id) while our push is in flight; its result."""

    async def attempt() -> str | None:
        status, body = await post_webhook(client, event, msg_id=msg_id)
        if status == 409 and body["error"] == "conflict":  # a push for this user is on the wire
            return None
        assert status == 200, body
        return str(body["result"])

    return await eventually(attempt, timeout=30)


async def test_edits_webhooks_and_push_outcomes_racing_on_one_user_end_as_a_serial_order_would(
    make_live: LiveFactory,
) -> None:
    """Two editors (name, email), a person editing the phone in the CRM, two senders of its news, pushes landing."""
    live = await make_live()
    client, auth, crm = live.backend, live.auth, live.crm
    user = await synced_user(client, auth)
    user_id, crm_id, db = user["id"], user["crm_id"], client.app[db_key]
    await set_faults(crm, latency_ms=15)  # every push is on the wire while edits and webhooks land
    sent = {"name": [user["name"]], "email": [user["email"]]}  # what each editor sent, in order
    acked = {"name": 0, "email": 0}  # the index of each editor's last edit answered 200
    phones: list[str] = []  # what the person set in the CRM, in order
    relayed: Counter[str] = Counter()
    racing = True
    samples = Counter[str]()

    async def editor(field: str, other: str, value: Callable[[int], str]) -> None:
        for n in range(EDITS):
            sent[field].append(value(n))
            floor = acked[other]
            resp = await client.patch(f"/users/{user_id}", json={field: value(n)}, headers=auth)
            body = await resp.json()
            assert resp.status == 200, body
            assert body[field] == value(n)
            # An edit of the other field answered before this one began is never undone (no lost update).
            assert sent[other].index(body[other]) >= floor, (field, body, sent[other][floor])
            acked[field] = len(sent[field]) - 1

    async def relay(n: int, record: dict[str, Any]) -> None:
        # The same news from a second sender, racing the mock's own delivery of it.
        news = {"crm_id": crm_id, "updated_fields": {"phone": record["phone"]}, "timestamp": record["updated_at"]}
        relayed[await deliver(client, news, msg_id=f"evt_relay_{n}")] += 1

    async def person() -> None:
        relays = []
        for n in range(PERSON_EDITS):
            edit = {"phone": PHONE.format(n)}
            status, record = await crm_call(crm, "POST", f"/crm/_admin/users/{crm_id}/edit", json=edit)
            assert status == 200, record
            phones.append(record["phone"])
            relays.append(asyncio.create_task(relay(n, record)))
        await asyncio.gather(*relays)

    async def watch() -> None:
        newest_phone = -1
        while racing:
            floors = dict(acked)
            row = await db.fetchrow(USER_AND_JOB, user_id)
            samples[row["sync_status"]] += 1
            # A pending user always has a queued job: nothing accepted waits without a way to the CRM.
            assert row["sync_status"] != "pending" or row["state"] == "queued", tuple(row)
            # No edit answered before this read began is undone; CRM news never goes back to an older phone.
            for field in ("name", "email"):
                assert sent[field].index(row[field]) >= floors[field], (field, tuple(row), sent[field][floors[field]])
            assert phone_number(row["phone"]) >= newest_phone, (tuple(row), newest_phone)
            newest_phone = phone_number(row["phone"])
            await asyncio.sleep(0.002)  # pacing the reads, not waiting for an outcome

    watcher = asyncio.create_task(watch())
    await asyncio.gather(
        editor("name", "email", lambda n: f"Name Edit {n}"),
        editor("email", "name", lambda n: f"email.edit.{n}@example.com"),
        person(),
    )
    racing = False
    await watcher
    await set_faults(crm, latency_ms=0)
    stats = live.crm_app[mock_keys.stats]

    async def settled() -> dict[str, Any] | None:
        local = await get_user(client, auth, user_id)
        record = crm_records(live.crm_app)[crm_id]
        same = (record.name, record.email, record.phone) == (local["name"], local["email"], local["phone"])
        return local if stats.webhooks_pending == 0 and local["sync_status"] == "synced" and same else None

    final = await eventually(settled, timeout=30)
    # Nobody else changes name and email; only the person changes the phone: the last of each wins.
    assert (final["name"], final["email"], final["phone"]) == (sent["name"][-1], sent["email"][-1], phones[-1])
    assert tuple(await db.fetchrow(USER_AND_JOB, user_id))[:2] == ("synced", "done")
    assert set(relayed) <= {"applied", "stale", "duplicate"} and sum(relayed.values()) == PERSON_EDITS
    assert all(d.outcome == "delivered" and d.status == 200 for d in stats.deliveries), stats.deliveries
    history = (await (await client.get(f"/users/{user_id}/history", headers=auth)).json())["items"]
    assert {item["result"] for item in history if item["type"] == "webhook_event"} <= {"applied", "stale"}
    assert samples["pending"] > 0  # the watcher saw the race, not only its end


async def test_one_event_delivered_many_times_at_once_to_two_instances_is_applied_once(
    backend: TestClient, auth: dict[str, str], make_replica: Replica
) -> None:
    user = await synced_user(backend, auth)
    replica = await make_replica()
    news = {"event_id": "evt_once", "crm_id": user["crm_id"], "updated_fields": {"phone": "555-0101010"},
            "timestamp": now_iso(), "source": "crm"}  # fmt: skip
    body, headers = sign_webhook(news)  # the same bytes each time, as a sender's redeliveries

    async def post(client: TestClient) -> str:
        async def attempt() -> str | None:
            resp = await client.post("/webhook", data=body, headers=headers)
            answer = await resp.json()
            if resp.status == 409 and answer["error"] == "conflict":
                return None
            assert resp.status == 200, answer
            return str(answer["result"])

        return await eventually(attempt, timeout=30)

    results = await asyncio.gather(*(post((backend, replica)[i % 2]) for i in range(20)))
    assert sorted(results) == ["applied"] + ["duplicate"] * 19
    assert (await get_user(replica, auth, user["id"]))["phone"] == "555-0101010"
    history = (await (await backend.get(f"/users/{user['id']}/history", headers=auth)).json())["items"]
    events = [item for item in history if item["type"] == "webhook_event"]
    assert [(e["event_id"], e["result"]) for e in events] == [("evt_once", "applied")]


@pytest.mark.parametrize("instances", [1, 2])
async def test_a_taken_email_in_a_shared_group_commit_fails_only_its_own_request(
    backend: TestClient, auth: dict[str, str], crm_app: web.Application, make_replica: Replica, instances: int
) -> None:
    existing = await synced_user(backend, auth, email="taken@example.com")
    clients = [backend, *[await make_replica() for _ in range(instances - 1)]]
    groups = {f"twice{g}@example.com": 2 if g % 2 else 3 for g in range(6)} | {"taken@example.com": 2}
    emails = [email for email, copies in groups.items() for _ in range(copies)]
    emails += [f"single{i}@example.com" for i in range(50 - len(emails))]
    random.Random(11).shuffle(emails)

    async def create(i: int, email: str) -> tuple[str, int, dict[str, Any]]:
        resp = await clients[i % instances].post("/users", json={**JOHN, "email": email}, headers=auth)
        return email, resp.status, await resp.json()

    answers = await asyncio.gather(*(create(i, email) for i, email in enumerate(emails)))
    assert not [a for a in answers if a[1] not in (201, 409)], answers
    for email in set(emails):
        mine = [(status, body) for e, status, body in answers if e == email]
        winners = [body["id"] for status, body in mine if status == 201]
        if email == "taken@example.com":
            assert winners == [] and len(mine) == 2
            winners = [existing["id"]]
        assert len(winners) == 1, (email, mine)
        for status, body in mine:
            if status == 409:
                assert (body["error"], body["id"]) == ("duplicate_email", winners[0]), (email, body)
    created = [body["id"] for _, status, body in answers if status == 201]
    assert len(created) == 50 - (sum(groups.values()) - len(groups)) - 1
    db = backend.app[db_key]
    assert await db.fetchval("SELECT COUNT(*) FROM users") == len(created) + 1
    assert await db.fetchval("SELECT COUNT(*) FROM sync_jobs") == len(created) + 1  # no job without its user

    async def all_synced() -> bool:
        return await db.fetchval("SELECT COUNT(*) FROM users WHERE sync_status = 'synced'") == len(created) + 1

    await eventually(all_synced, timeout=30)
    assert len(crm_records(crm_app)) == len(created) + 1  # every request that won reached the CRM, once


async def test_instances_opening_an_empty_database_at_once_migrate_it_once(
    new_database: NewDatabase, engine: str
) -> None:
    # Each round races three opens of a new, empty database. On SQLite one round in ten used to lose the race
    # to turn the file into WAL ("database is locked"), so the rounds are many.
    for _ in range(40 if engine == "sqlite" else 3):
        url = engines.parse_database_url(await new_database())
        opened = await asyncio.gather(*(engines.open_database(url) for _ in range(3)), return_exceptions=True)
        try:
            assert not [db for db in opened if isinstance(db, BaseException)], opened
            for db in opened:
                assert isinstance(db, Database)
                assert await schema_versions(db) == expected_versions(engine)
        finally:
            for db in opened:
                if isinstance(db, Database):
                    await db.close()


async def test_processes_starting_at_once_on_an_empty_database_migrate_it_once(
    database_url: str, engine: str, tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> None:
    env = crmsync_env(
        CRMSYNC_DATABASE_URL=database_url, CRMSYNC_CRM_URL=f"http://127.0.0.1:{unused_tcp_port_factory()}"
    )
    apps = [AppProcess(unused_tcp_port_factory(), env, tmp_path, name=f"app{i}") for i in range(3)]
    try:
        await asyncio.gather(*(app.start(gated=True) for app in apps))
        await asyncio.gather(*(app.at_gate() for app in apps))
        await asyncio.gather(*(app.open_gate() for app in apps))  # all start from here, imports done
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(app.serving(session) for app in apps))
    finally:
        codes = [await app.stop() for app in apps]
    assert codes == [0, 0, 0], [app.stderr() for app in apps]
    db = await engines.open_database(engines.parse_database_url(database_url))
    try:
        assert await schema_versions(db) == expected_versions(engine)
    finally:
        await db.close()


async def test_many_users_changed_everywhere_at_once_are_locked_in_one_order(
    make_live: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Webhook batches, sweep pages and batches of push outcomes each lock many users in one transaction."""
    live = await make_live(workers=8)
    client, auth, crm = live.backend, live.auth, live.crm
    users = [await synced_user(client, auth, email=f"many{i}@example.com") for i in range(20)]
    rng = random.Random(5)

    async def person(crm_id: str, n: int) -> None:
        status, record = await crm_call(
            crm, "POST", f"/crm/_admin/users/{crm_id}/edit", json={"phone": PHONE.format(n)}
        )
        assert status == 200, record

    async def edit(user_id: str, n: int) -> None:
        resp = await client.patch(f"/users/{user_id}", json={"name": f"Round {n}"}, headers=auth)
        assert resp.status == 200, await resp.text()

    async def sweep() -> None:
        resp = await client.post("/reconcile", headers=auth)
        assert resp.status == 202, await resp.text()

    for n in range(ROUNDS):  # each round: news of every user, an edit of every user and a sweep, all at once
        await asyncio.gather(
            *(person(user["crm_id"], n) for user in rng.sample(users, len(users))),
            *(edit(user["id"], n) for user in rng.sample(users, len(users))),
            sweep(),
        )
    stats = live.crm_app[mock_keys.stats]

    async def settled() -> list[dict[str, Any]] | None:
        finals = [await get_user(client, auth, user["id"]) for user in users]
        records = crm_records(live.crm_app)
        same = all((records[f["crm_id"]].name, records[f["crm_id"]].phone) == (f["name"], f["phone"]) for f in finals)
        return (
            finals
            if same and stats.webhooks_pending == 0 and {f["sync_status"] for f in finals} == {"synced"}
            else None
        )

    finals = await eventually(settled, timeout=30)
    assert {(f["name"], f["phone"]) for f in finals} == {(f"Round {ROUNDS - 1}", PHONE.format(ROUNDS - 1))}
    assert all(d.outcome == "delivered" for d in stats.deliveries)
    # No transaction waited on another in a circle: nothing had to be run again, nothing failed.
    retried = [r for r in caplog.records if r.getMessage() == "transaction_conflict_retried"]
    failed = [r for r in caplog.records if r.name.startswith("crmsync") and r.levelno >= logging.ERROR]
    assert retried + failed == [], [(r.name, r.getMessage(), r.exc_text) for r in retried + failed]
