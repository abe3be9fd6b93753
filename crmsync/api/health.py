"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from aiohttp import web

from ..auth import public
from ..db import fetch_all
from ..keys import db_key, engine_key, metrics_key, readiness_key
from ..metrics import CONTENT_TYPE
from ..render import json_response

logger = logging.getLogger(__name__)


@public
async def healthz(_: web.Request) -> web.Response:
    """The process is up and serving."""
    return json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """503 when the database cannot take writes; a failing CRM is reported with a 200 (the outbox holds writes)."""
    status, body = await request.app[readiness_key].report()
    return json_response(body, status=status)


@public
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition; the gauges are read now, from the queue and the database."""
    registry = request.app[metrics_key]
    registry.queue_depth.set(request.app[engine_key].pool.depth)
    rows = await fetch_all(request.app[db_key].reader, "SELECT sync_status, COUNT(*) FROM users GROUP BY sync_status")
    counts = {status: 0 for status in ("pending", "synced", "failed")} | {row[0]: row[1] for row in rows}
    for status, count in counts.items():
        registry.users.labels(status).set(count)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE})
