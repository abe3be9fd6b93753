"""The ingest reference for scripts/bench.py: the least an aiohttp app can do per POST /users.

    .venv/bin/python scripts/bench_reference.py --db PATH [--host 127.0.0.1] [--port 8090]

It stores the same JSON with the durability crmsync promises and nothing else: aiosqlite, one
connection, WAL with synchronous=FULL (an fsync of the WAL per commit), and per request one
transaction holding one INSERT, committed before the 201 JSON reply. A lock around the
transaction keeps concurrent requests from sharing a commit (no group commit), as crmsync's
Database.transaction() does. No auth, no outbox, no sync workers: the backend's ratio to this is
what its extra work costs. GET /healthz answers {"status": "ok"}.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
from aiohttp import web

conn_key: web.AppKey[aiosqlite.Connection] = web.AppKey("conn", aiosqlite.Connection)
lock_key: web.AppKey[asyncio.Lock] = web.AppKey("lock", asyncio.Lock)
path_key: web.AppKey[Path] = web.AppKey("path", Path)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
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
    conn = request.app[conn_key]
    async with request.app[lock_key]:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(
                "INSERT INTO users (id, name, email, phone, created_at) VALUES (?, ?, ?, ?, ?)",
                (user["id"], user["name"], user["email"], user["phone"], user["created_at"]),
            )
        except sqlite3.IntegrityError:
            await conn.execute("ROLLBACK")
            return web.json_response({"error": "email taken"}, status=409)
        await conn.execute("COMMIT")
    return web.json_response(user, status=201)


async def database(app: web.Application) -> AsyncIterator[None]:
    conn = await aiosqlite.connect(app[path_key], isolation_level=None)
    for pragma in ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 5000"):
        await conn.execute(pragma)
    await conn.execute(SCHEMA)
    app[conn_key] = conn
    app[lock_key] = asyncio.Lock()
    yield
    await conn.close()


def create_app(db: Path) -> web.Application:
    app = web.Application()
    app[path_key] = db
    app.cleanup_ctx.append(database)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/users", create_user)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    # The same event loop as crmsync (uvloop when installed), so the ratio compares the apps, not the loops.
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(create_app(args.db), host=args.host, port=args.port, print=None, access_log=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
