"""The ingest references for scripts/bench.py: the plainest correct aiohttp app for POST /users.

    .venv/bin/python scripts/bench_reference.py --db PATH [--synchronous FULL|NORMAL] [--port 8090]
    .venv/bin/python scripts/bench_reference.py --postgres DSN [--pool 10] [--port 8090]

It parses the same JSON, INSERTs one row and answers 201 with it once the row is committed, and does
nothing else: no auth, no outbox, no sync workers, and nothing that slows it on purpose (no lock, no
BEGIN IMMEDIATE). SQLite: one aiosqlite connection, WAL, synchronous FULL (an fsync of the WAL per
commit, the durability crmsync promises) or NORMAL (no fsync per commit: the CPU ceiling); per request
an INSERT and a commit on the shared connection, so a commit also covers the INSERTs of other requests
that reached the connection's thread before it (what one shared connection does by itself).
PostgreSQL: an asyncpg pool, one INSERT per request in its own implicit transaction (committed,
synchronous_commit as the server has it, before the 201). GET /healthz answers {"status": "ok"}.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import asyncpg
from aiohttp import web

Insert = Callable[[tuple[str, str, str, str, str]], Awaitable[bool]]  # False: the email is taken
insert_key: web.AppKey[Insert] = web.AppKey("insert", Insert)  # type: ignore[arg-type]

INSERT = "INSERT INTO users (id, name, email, phone, created_at) VALUES ({})"
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " email TEXT NOT NULL UNIQUE, phone TEXT NOT NULL, created_at TEXT NOT NULL)"
)
POSTGRES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " email TEXT NOT NULL UNIQUE, phone TEXT NOT NULL, created_at TEXT NOT NULL)"
)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def create_user(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "invalid JSON"}, status=400)
    fields = {k: body.get(k) for k in ("name", "email", "phone")} if isinstance(body, dict) else {}
    if not fields or not all(isinstance(v, str) and v for v in fields.values()):
        return web.json_response({"error": "name, email and phone are required"}, status=422)
    user = {"id": str(uuid.uuid4()), **fields, "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if not await request.app[insert_key]((user["id"], user["name"], user["email"], user["phone"], user["created_at"])):
        return web.json_response({"error": "email taken"}, status=409)
    return web.json_response(user, status=201)


def sqlite_store(path: Path, synchronous: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def store(app: web.Application) -> AsyncIterator[None]:
        conn = await aiosqlite.connect(path)
        for pragma in ("journal_mode = WAL", f"synchronous = {synchronous}", "busy_timeout = 5000"):
            await conn.execute(f"PRAGMA {pragma}")
        await conn.execute(SQLITE_SCHEMA)
        await conn.commit()
        sql = INSERT.format("?, ?, ?, ?, ?")

        async def insert(row: tuple[str, str, str, str, str]) -> bool:
            try:
                await conn.execute(sql, row)
            except sqlite3.IntegrityError:
                return False
            await conn.commit()
            return True

        app[insert_key] = insert
        yield
        await conn.close()

    return store


def postgres_store(dsn: str, pool_size: int) -> Callable[[web.Application], AsyncIterator[None]]:
    async def store(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        await pool.execute(POSTGRES_SCHEMA)
        sql = INSERT.format("$1, $2, $3, $4, $5")

        async def insert(row: tuple[str, str, str, str, str]) -> bool:
            try:
                await pool.execute(sql, *row)
            except asyncpg.UniqueViolationError:
                return False
            return True

        app[insert_key] = insert
        yield
        await pool.close()

    return store


def create_app(store: Callable[[web.Application], AsyncIterator[None]]) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(store)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/users", create_user)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", type=Path, help="a SQLite file")
    where.add_argument("--postgres", metavar="DSN", help="a PostgreSQL database (postgresql://...)")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL", help="SQLite only")
    parser.add_argument("--pool", type=int, default=10, help="PostgreSQL connections (crmsync's default pool)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    store = sqlite_store(args.db, args.synchronous) if args.db else postgres_store(args.postgres, args.pool)
    # The same event loop as crmsync (uvloop when installed), so the ratio compares the apps, not the loops.
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(create_app(store), host=args.host, port=args.port, print=None, access_log=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
