"""The benchmark writes pending users through crmsync's store (scripts/bench_db.py): on each engine, what
it writes must be what crmsync's store reads back as pending users with queued push jobs."""

from __future__ import annotations

import json

from crmsync.store import jobs, users
from crmsync.store.engines import open_database, parse_database_url
from scripts.bench_db import insert_pending


async def test_pending_users_written_by_the_bench_are_queued_pending_users_to_the_store(
    database_url: str,
) -> None:
    url = parse_database_url(database_url)
    await (await open_database(url)).close()  # crmsync's schema, as the bench's template has it
    await insert_pending(database_url, 3, "t")

    db = await open_database(url)
    try:
        now = db.now()
        found = await jobs.claim(db, "bench-test", 10, now, now)
        assert len(found) == 3 and all(job.run_after is not None and job.run_after <= now for job in found)
        assert {(j.kind, j.state, j.generation, j.attempts) for j in found} == {(jobs.USER_PUSH, "queued", 1, 0)}
        pending = await users.get_many(db, [j.entity_id for j in found])
        assert sorted(u.email for u in pending.values()) == [f"pending-t-{i}@example.com" for i in range(3)]
        for user in pending.values():
            assert user.sync_status == "pending" and user.crm_id is None and user.sync_attempts == 0
            assert json.loads(user.create_body or "") == user.contact()
            assert user.created_at.endswith("Z") and user.created_at == user.updated_at
    finally:
        await db.close()
