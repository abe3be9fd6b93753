"""Webhook event retention: old events are pruned in the background, recent ones and the history stay."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config, ConfigError
from crmsync.keys import db_key
from crmsync.store import webhook_events
from crmsync.store.database import Database
from crmsync.store.engines import open_database, parse_database_url
from crmsync.timeutil import isoformat, utcnow

from .conftest import CLIENT_SECRET, JOHN, JWT_SECRET, WEBHOOK_SECRET, crm_call, post_webhook, sign_up, synced_user
from .polling import eventually

DAY = 86400.0


def _event(crm_id: str, **fields: str) -> dict[str, Any]:
    return {"event_id": f"evt_{uuid.uuid4().hex}", "crm_id": crm_id, "updated_fields": fields,
            "timestamp": isoformat(utcnow()), "source": "crm"}  # fmt: skip


async def sql(db: Database, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    """One statement in a transaction of its own, through the app's database (either engine)."""
    async with db.transaction() as conn:
        return [tuple(row) for row in await conn.fetch(statement, *args)]


async def age(db: Database, event_ids: list[str], days: float) -> None:
    """Make stored events look received `days` ago."""
    moment = isoformat(utcnow() - timedelta(days=days))
    marks = ", ".join(f"${i}" for i in range(2, len(event_ids) + 2))
    await sql(db, f"UPDATE webhook_events SET received_at = $1 WHERE id IN ({marks})", moment, *event_ids)  # noqa: S608


async def stored_ids(db: Database) -> set[str]:
    return {row[0] for row in await db.fetch("SELECT id FROM webhook_events")}


async def test_events_past_the_retention_are_pruned_and_recent_ones_stay(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.retention")
    config = make_config(webhook_prune_interval=0.05)  # the default retention: 30 days
    client = await aiohttp_client(create_app(config))
    auth = await sign_up(client)
    user = await synced_user(client, auth)
    _, stranger = await crm_call(crm, "POST", "/crm/users", json={**JOHN, "email": "stranger@example.com"})
    old, old_unknown, recent, recent_unknown = (
        _event(user["crm_id"], phone="111-111-1111"),
        _event(stranger["crm_id"], phone="222-222-2222"),  # no local user: stored, answered 404
        _event(user["crm_id"], phone="333-333-3333"),
        _event(stranger["crm_id"], phone="444-444-4444"),
    )
    statuses = [(await post_webhook(client, event))[0] for event in (old, old_unknown, recent, recent_unknown)]
    assert statuses == [200, 404, 200, 404]
    ids = {name: event["event_id"] for name, event in
           {"old": old, "old_unknown": old_unknown, "recent": recent, "recent_unknown": recent_unknown}.items()}  # fmt: skip
    assert set(ids.values()) <= await stored_ids(client.app[db_key])

    await age(client.app[db_key], [ids["old"], ids["old_unknown"]], days=31)
    await age(client.app[db_key], [ids["recent"]], days=29)

    async def pruned() -> bool:
        return not {ids["old"], ids["old_unknown"]} & await stored_ids(client.app[db_key])

    await eventually(pruned, timeout=10)
    assert {ids["recent"], ids["recent_unknown"]} <= await stored_ids(client.app[db_key])
    lines = [r for r in caplog.records if r.getMessage() == "webhook_events_pruned"]
    assert lines and lines[0].levelno == logging.INFO and lines[0].count == 2

    # The history still answers: the sync attempt and the recent event, not the pruned one.
    resp = await client.get(f"/users/{user['id']}/history", headers=auth)
    assert resp.status == 200
    items = (await resp.json())["items"]
    events = [item["event_id"] for item in items if item["type"] == "webhook_event"]
    assert events == [ids["recent"]]
    assert any(item["type"] == "sync_attempt" for item in items)


async def test_a_failing_database_is_a_warning_and_the_next_round_prunes(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.retention")
    config = make_config(webhook_prune_interval=0.05)
    client = await aiohttp_client(create_app(config))
    auth = await sign_up(client)
    user = await synced_user(client, auth)
    event = _event(user["crm_id"], phone="111-111-1111")
    assert (await post_webhook(client, event))[0] == 200
    # Take the table away from under the app: every prune now fails in the database.
    await sql(client.app[db_key], "ALTER TABLE webhook_events RENAME TO webhook_events_away")
    await eventually(lambda: [r for r in caplog.records if r.getMessage() == "webhook_prune_failed"], timeout=10)
    failures = [r for r in caplog.records if r.getMessage() == "webhook_prune_failed"]
    assert all(r.levelno == logging.WARNING for r in failures)

    await sql(client.app[db_key], "ALTER TABLE webhook_events_away RENAME TO webhook_events")
    await age(client.app[db_key], [event["event_id"]], days=31)
    await eventually(lambda: [r for r in caplog.records if r.getMessage() == "webhook_events_pruned"], timeout=10)
    assert await stored_ids(client.app[db_key]) == set()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_prune_deletes_in_bounded_batches_until_nothing_old_is_left(tmp_path: Path) -> None:
    db = await open_database(parse_database_url(f"sqlite:///{tmp_path / 'prune.db'}"))
    try:
        old, recent = isoformat(utcnow() - timedelta(days=40)), isoformat(utcnow())
        rows = [(f"evt_{n}", "CRM1", old if n < 250 else recent) for n in range(260)]
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO webhook_events (id, crm_id, received_at, result, payload) VALUES ($1, $2, $3, 'applied', '{}')",
                rows,
            )
        cutoff = isoformat(utcnow() - timedelta(days=30))
        assert await webhook_events.prune(db, cutoff, batch=100) == 250
        assert await webhook_events.prune(db, cutoff, batch=100) == 0
        assert await db.fetchval("SELECT COUNT(*) FROM webhook_events") == 10
        rows = await db.fetch(
            "EXPLAIN QUERY PLAN SELECT id FROM webhook_events WHERE received_at < $1 ORDER BY received_at LIMIT 1",
            cutoff,
        )
        plan = " ".join(str(row[-1]) for row in rows)
        assert "webhook_events_received" in plan  # the prune reads an index, not the whole table
    finally:
        await db.close()


def test_the_retention_is_read_in_days() -> None:
    env = {"CRMSYNC_CRM_CLIENT_SECRET": CLIENT_SECRET, "CRMSYNC_JWT_SECRET": JWT_SECRET,
           "CRMSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET}  # fmt: skip
    assert Config.from_env(env).webhook_retention == 30 * DAY
    assert Config.from_env({**env, "CRMSYNC_WEBHOOK_RETENTION_DAYS": "0.5"}).webhook_retention == DAY / 2
    assert Config.from_env({**env, "CRMSYNC_WEBHOOK_RETENTION_DAYS": "0"}).webhook_retention == 0
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigError, match="CRMSYNC_WEBHOOK_RETENTION_DAYS"):
            Config.from_env({**env, "CRMSYNC_WEBHOOK_RETENTION_DAYS": bad})
