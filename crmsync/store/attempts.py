"""The sync_attempts table: one row per request made to the CRM on a user's behalf."""

from __future__ import annotations

from collections.abc import Sequence

from ..crm.attempts import Attempt
from .database import Connection


async def record(conn: Connection, user_id: str, first_number: int, tries: Sequence[Attempt]) -> None:
    """Store a run's tries, numbered on from the user's previous attempts."""
    await record_many(conn, [(user_id, first_number, tries)])


async def record_many(conn: Connection, runs: Sequence[tuple[str, int, Sequence[Attempt]]]) -> None:
    """Store the tries of several runs, (user id, first attempt number, tries) each, in one statement."""
    rows = [
        (user_id, first_number + i, t.operation, t.started_at, t.finished_at, t.duration_ms, t.outcome,
         t.http_status, t.error)
        for user_id, first_number, tries in runs
        for i, t in enumerate(tries)
    ]  # fmt: skip
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO sync_attempts (user_id, attempt, operation, started_at, finished_at, duration_ms, outcome,"
        " http_status, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        rows,
    )
