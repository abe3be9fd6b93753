"""The sync_attempts table: one row per request made to the CRM on a user's behalf."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite
import attrs


@attrs.frozen
class Attempt:
    """One HTTP try against the CRM, as the history shows it."""

    operation: str
    started_at: str
    finished_at: str
    duration_ms: float
    outcome: str
    http_status: int | None = None
    error: str | None = None


async def record(conn: aiosqlite.Connection, user_id: str, first_number: int, tries: Sequence[Attempt]) -> None:
    """Store a run's tries, numbered on from the user's previous attempts."""
    await conn.executemany(
        "INSERT INTO sync_attempts (user_id, attempt, operation, started_at, finished_at, duration_ms, outcome,"
        " http_status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (user_id, first_number + i, t.operation, t.started_at, t.finished_at, t.duration_ms, t.outcome,
             t.http_status, t.error)
            for i, t in enumerate(tries)
        ],
    )  # fmt: skip
