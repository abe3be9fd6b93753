"""User.from_row picks each field by its column's name, whatever the column order of the row (it caches
the positions per column layout), on both engines' row types."""

from __future__ import annotations

import sqlite3

import asyncpg

from crmsync.store.users import User

VALUES = {
    "id": "u1", "name": "Ada", "email": "ada@example.com", "phone": "+1 555 0000001", "sync_status": "pending",
    "crm_id": None, "last_error": None, "sync_attempts": 0, "next_retry_at": None,
    "created_at": "2026-12-01T00:00:00.000000Z", "updated_at": "2026-12-01T00:00:01.000000Z",
    "last_synced_at": None, "create_body": "{}", "create_gen": 0, "synced_name": None, "synced_email": None,
    "synced_phone": None, "crm_updated_at": None, "crm_name_at": None, "crm_email_at": None, "crm_phone_at": None,
    "push_intents": None, "crm_news_at": None, "linked_at": None, "delete_requested_at": None, "deleted_at": None,
    "crm_deleted_id": "gone-1",
}  # fmt: skip


def sqlite_row(columns: list[str]) -> sqlite3.Row:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    select = ", ".join(f"? AS {name}" for name in columns)
    row = conn.execute(f"SELECT {select}", [VALUES.get(name, "extra") for name in columns]).fetchone()
    conn.close()
    return row


def test_rows_with_columns_in_any_order_give_the_same_user() -> None:
    expected = User(**VALUES)
    table_order = list(VALUES)
    shuffled = [*reversed(table_order[:10]), "seq", *table_order[10:], "unknown_column"]
    assert User.from_row(sqlite_row(table_order)) == expected
    assert User.from_row(sqlite_row(shuffled)) == expected
    assert User.from_row(sqlite_row(table_order)) == expected  # the first layout's positions, cached, still right


async def test_asyncpg_records_give_the_same_user(pg_server_url: str) -> None:
    conn = await asyncpg.connect(pg_server_url)
    try:
        names = [*reversed(VALUES), "seq"]
        select = ", ".join(f"${i}::{_pg_type(VALUES.get(n, 0))} AS {n}" for i, n in enumerate(names, 1))
        row = await conn.fetchrow(f"SELECT {select}", *[VALUES.get(n, 0) for n in names])
    finally:
        await conn.close()
    assert User.from_row(row) == User(**VALUES)


def _pg_type(value: object) -> str:
    return "int" if isinstance(value, int) else "text"
