"""A user's history: sync attempts, CRM webhook events and resolved conflicts, newest first."""

from __future__ import annotations

import heapq
from typing import Any

from . import user_life
from .database import Database

_ATTEMPTS = (
    "SELECT id, attempt, operation, started_at, finished_at, duration_ms, outcome, http_status, error"
    " FROM sync_attempts WHERE user_id = $1 ORDER BY finished_at DESC, id DESC LIMIT $2"
)
_WEBHOOKS = (
    "SELECT id, crm_id, source, event_timestamp, received_at, result, detail FROM webhook_events"
    " WHERE user_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2"
)
_CONFLICTS = (
    "SELECT id, field, local_value, crm_value, base_value, origin, resolved_at FROM conflicts"
    " WHERE user_id = $1 ORDER BY resolved_at DESC, id DESC LIMIT $2"
)


async def history(db: Database, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Everything that happened to the user's sync, newest first."""
    attempts = [
        {"type": "sync_attempt", "at": r["finished_at"], "attempt": r["attempt"], "operation": r["operation"],
         "started_at": r["started_at"], "finished_at": r["finished_at"], "duration_ms": r["duration_ms"],
         "outcome": r["outcome"], "http_status": r["http_status"], "error": r["error"]}
        for r in await db.fetch(_ATTEMPTS, user_id, limit)
    ]  # fmt: skip
    webhooks = [
        {"type": "webhook_event", "at": r["received_at"], "event_id": r["id"], "crm_id": r["crm_id"],
         "source": r["source"], "event_timestamp": r["event_timestamp"], "result": r["result"],
         "detail": r["detail"]}
        for r in await db.fetch(_WEBHOOKS, user_id, limit)
    ]  # fmt: skip
    conflicts = [
        {"type": "conflict", "at": r["resolved_at"], "field": r["field"], "local_value": r["local_value"],
         "crm_value": r["crm_value"], "base_value": r["base_value"], "origin": r["origin"], "winner": "crm"}
        for r in await db.fetch(_CONFLICTS, user_id, limit)
    ]  # fmt: skip
    lifecycle = await user_life.events(db, user_id, limit)
    # Each list is newest first; a stable merge keeps that order where two moments are equal.
    merged = heapq.merge(attempts, webhooks, conflicts, lifecycle, key=lambda item: item["at"], reverse=True)
    return list(merged)[:limit]


_RECENT_CONFLICTS = (
    "SELECT id, user_id, field, local_value, crm_value, base_value, origin, resolved_at FROM conflicts"
    " WHERE {} ORDER BY id DESC LIMIT $1"
)


async def conflicts_page(db: Database, limit: int, before: int) -> tuple[list[dict[str, Any]], int | None]:
    """Resolved conflicts of every user, newest first, older than the id cursor (0: from the newest)."""
    if before:
        rows = await db.fetch(_RECENT_CONFLICTS.format("id < $2"), limit + 1, before)
    else:
        rows = await db.fetch(_RECENT_CONFLICTS.format("TRUE"), limit + 1)
    items = [
        {"id": int(r["id"]), "user_id": r["user_id"], "field": r["field"], "local_value": r["local_value"],
         "crm_value": r["crm_value"], "base_value": r["base_value"], "winner": "crm", "origin": r["origin"],
         "resolved_at": r["resolved_at"]}
        for r in rows[:limit]
    ]  # fmt: skip
    return items, (items[-1]["id"] if len(rows) > limit else None)
