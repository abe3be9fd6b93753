"""The app factory: state on typed keys, middlewares in fault order, routes, cleanup contexts."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm import admin, batch, keys, listing, meetings, users
from mock_crm.areas import route_name
from mock_crm.auth import bearer_middleware, token_handler
from mock_crm.buckets import RateLimiter
from mock_crm.config import MockConfig
from mock_crm.error_middleware import error_middleware
from mock_crm.faults import faults_middleware, latency_middleware
from mock_crm.idempotency import IdempotencyCache
from mock_crm.inflight import InFlight
from mock_crm.intervals import get_intervals, inflight_middleware
from mock_crm.lifecycle import http_session, webhook_worker
from mock_crm.ratelimit import add_rate_headers, ratelimit_middleware
from mock_crm.settings import FaultSettings
from mock_crm.stats import Stats
from mock_crm.store import Store
from mock_crm.tokens import TokenIssuer
from mock_crm.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count calls per route and responses per status; log one line per request."""
    stats = request.app[keys.stats]
    name = route_name(request)
    if name is not None:
        stats.calls[name] += 1
    started = time.perf_counter()
    response = await handler(request)
    dropped = request.get(keys.dropped, False)
    if not dropped:
        stats.responses[response.status] += 1
    logger.info(
        "http_request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": None if dropped else response.status,
            "client_id": request.get(keys.client),
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    return response


def _routes(app: web.Application) -> None:
    """Register every route (batch before {crm_id} so it is never taken for an id)."""
    router = app.router
    router.add_get("/healthz", admin.healthz)
    router.add_post("/crm/token", token_handler)
    router.add_post("/crm/users/batch", batch.post_batch)
    router.add_post("/crm/users", users.post_user)
    router.add_get("/crm/users", listing.list_users)
    router.add_get("/crm/users/{crm_id}", users.get_user)
    router.add_patch("/crm/users/{crm_id}", users.patch_user)
    router.add_delete("/crm/users/{crm_id}", users.delete_user)
    router.add_post("/crm/meetings", meetings.post_meeting)
    router.add_get("/crm/meetings/{meeting_id}", meetings.get_meeting)
    router.add_patch("/crm/meetings/{meeting_id}", meetings.patch_meeting)
    router.add_put("/crm/meetings/{meeting_id}/contacts", meetings.put_contacts)
    router.add_post("/crm/_admin/users/{crm_id}/edit", admin.edit_user_as_person)
    router.add_post("/crm/_admin/users", admin.create_user_as_person)
    router.add_delete("/crm/_admin/users/{crm_id}", admin.delete_user_as_person)
    router.add_get("/crm/_admin/faults", admin.get_faults)
    router.add_put("/crm/_admin/faults", admin.put_faults)
    router.add_get("/crm/_admin/stats", admin.get_stats)
    router.add_get("/crm/_admin/intervals", get_intervals)
    router.add_get("/openapi.json", openapi)


OPENAPI = Path(__file__).resolve().parent / "openapi.json"


async def openapi(_: web.Request) -> web.FileResponse:
    """GET /openapi.json: the OpenAPI 3.1 description of the mock CRM."""
    return web.FileResponse(OPENAPI, headers={"Content-Type": "application/json"})


def create_app(config: MockConfig) -> web.Application:
    """Build the mock CRM application (no I/O; the session and worker start with the app)."""
    app = web.Application(
        middlewares=[
            observe_middleware,
            inflight_middleware,
            error_middleware,
            latency_middleware,
            bearer_middleware,
            ratelimit_middleware,
            faults_middleware,
        ]
    )
    stats = Stats()
    faults = FaultSettings.from_config(config)
    app[keys.config] = config
    app[keys.stats] = stats
    app[keys.store] = Store()
    app[keys.faults] = faults
    app[keys.rng] = random.Random(config.seed)  # drives faults, not secrets
    app[keys.tokens] = TokenIssuer(config.client_id, config.client_secret, config.token_ttl)
    app[keys.limiter] = RateLimiter(faults)
    app[keys.idempotency] = IdempotencyCache()
    app[keys.webhooks] = WebhookDispatcher(config, stats)
    app[keys.inflight] = InFlight()
    _routes(app)
    app.on_response_prepare.append(add_rate_headers)
    app.cleanup_ctx.append(http_session)
    app.cleanup_ctx.append(webhook_worker)
    return app
