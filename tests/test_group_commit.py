"""Group commit (store/database.py run_units): units that arrive together share one transaction, and a
unit that fails fails alone: what it wrote is undone, its neighbours' writes are committed."""

from __future__ import annotations

import asyncio

import pytest

from crmsync.store import webhook_events
from crmsync.store.database import Connection, Database
from crmsync.store.engines import open_database, parse_database_url


async def _write(conn: Connection, event_id: str) -> str:
    await webhook_events.store(
        conn, event_id, "crm-1", None, "test", None, "applied", None, "{}", "2026-01-01T00:00:00Z"
    )
    return event_id


def _unit(event_id: str, fails: str | None):
    async def unit(conn: Connection) -> str:
        await _write(conn, event_id)
        if fails == "python":
            raise ValueError(f"{event_id} fails after writing")
        if fails == "sql":  # a database error: on PostgreSQL it aborts the transaction, not just the statement
            await conn.execute("SELECT * FROM no_such_table")
        return event_id

    return unit


@pytest.fixture
async def db(database_url: str):
    database = await open_database(parse_database_url(database_url))
    yield database
    await database.close()


@pytest.mark.parametrize("failures", [(), (1,), (0, 3), (4,)])
async def test_a_failing_unit_fails_alone_and_its_neighbours_commit(db: Database, failures: tuple[int, ...]) -> None:
    plan = {i: (("python", "sql")[i % 2] if i in failures else None) for i in range(5)}
    outcomes = await asyncio.gather(
        *(db.grouped(_unit(f"ev-{len(failures)}-{i}", fails)) for i, fails in plan.items()), return_exceptions=True
    )
    for i, fails in plan.items():
        event_id = f"ev-{len(failures)}-{i}"
        stored = await webhook_events.seen(db, event_id)
        if fails is None:
            assert outcomes[i] == event_id and stored == ("applied", None)
        else:
            assert isinstance(outcomes[i], Exception) and stored is None, (i, outcomes[i], stored)


async def test_many_units_at_once_all_commit(db: Database) -> None:
    ids = [f"bulk-{i}" for i in range(600)]  # more than one batch (256)
    assert await asyncio.gather(*(db.grouped(_unit(event_id, None)) for event_id in ids)) == ids
    assert all([await webhook_events.seen(db, event_id) == ("applied", None) for event_id in ids])


async def test_close_commits_every_batch_in_flight_and_waiting(database_url: str) -> None:
    db = await open_database(parse_database_url(database_url))
    ids = [f"closing-{i}" for i in range(700)]
    pending = [asyncio.ensure_future(db.grouped(_unit(event_id, None))) for event_id in ids]
    await asyncio.sleep(0)  # every unit is queued; the first batches start
    await db.close()  # commits what is in flight and what waits, then closes the connections
    assert await asyncio.wait_for(asyncio.gather(*pending), 30) == ids
    db = await open_database(parse_database_url(database_url))
    try:
        assert all([await webhook_events.seen(db, event_id) == ("applied", None) for event_id in ids])
    finally:
        await db.close()


async def test_a_server_runs_batches_side_by_side(db: Database) -> None:
    """On PostgreSQL a batch waiting on the server does not hold up the next (SQLite has one writer)."""
    if db.engine == "sqlite":
        assert db.parallel_batches == 1
        return
    assert db.parallel_batches > 1
    first_holds = asyncio.Event()
    release = asyncio.Event()

    async def slow(conn: Connection) -> str:
        await _write(conn, "side-slow")
        first_holds.set()
        await release.wait()  # this batch stays open...
        return "slow"

    slow_task = asyncio.ensure_future(db.grouped(slow))
    await asyncio.wait_for(first_holds.wait(), 30)
    # ...while another commits on its own connection
    assert await asyncio.wait_for(db.grouped(_unit("side-fast", None)), 30) == "side-fast"
    assert await webhook_events.seen(db, "side-fast") == ("applied", None)
    release.set()
    assert await slow_task == "slow"
