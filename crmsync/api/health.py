"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from aiohttp import web

from ..auth import public
from ..keys import db_key, membership_key, metrics_key, readiness_key, replica_key
from ..metrics import CONTENT_TYPE
from ..render import json_response
from ..store import jobs, users

logger = logging.getLogger(__name__)


@public
async def healthz(_: web.Request) -> web.Response:
    """The process is up and serving."""
    return json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """503 when the database cannot take writes; a failing CRM is reported with a 200 (the outbox holds writes)."""
    status, body = await request.app[readiness_key].report()
    return json_response({**body, "replica": request.app[replica_key]}, status=status)


@public
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition; the gauges are read now, from the queue and the database."""
    registry = request.app[metrics_key]
    registry.queue_depth.set(await jobs.queued_count(request.app[db_key]))
    counts = dict.fromkeys(("pending", "synced", "failed"), 0) | await users.count_by_status(request.app[db_key])
    for status, count in counts.items():
        registry.users.labels(status).set(count)
    live = request.app[membership_key].live
    registry.replicas.set(len(live))
    for replica in live:
        registry.replica_jobs_running.labels(replica.id).set(replica.jobs_running)
        registry.replica_jobs_done.labels(replica.id).set(replica.jobs_done)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE})
