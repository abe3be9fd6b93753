"""Injected misbehaviour: added latency, 503 failures, and writes whose reply is lost."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm import keys
from mock_crm.areas import WRITE_METHODS, Area, area_of
from mock_crm.errors import Internal, ScriptedFailure, Unavailable

logger = logging.getLogger(__name__)

# Only the data API misbehaves: /crm/token, /crm/_admin and /healthz stay reliable so that tests
# (and people) can always get a token and turn the faults back off.


@web.middleware
async def latency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sleep latency_ms before handling data API requests."""
    delay = request.app[keys.faults].latency_ms
    if delay > 0 and area_of(request) is Area.API:
        await asyncio.sleep(delay / 1000)
    return await handler(request)


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Fail a share of requests with 503 up front, and lose the reply of a share of applied writes."""
    if area_of(request) is not Area.API:
        return await handler(request)
    app = request.app
    settings, rng, stats = app[keys.faults], app[keys.rng], app[keys.stats]
    if settings.fail_next > 0:
        settings.fail_next -= 1
        stats.injected_failures += 1
        logger.info("failure_scripted", extra={"method": request.method, "path": request.path,
                                               "status": settings.fail_status})  # fmt: skip
        raise ScriptedFailure(settings.fail_status)
    if settings.failure_rate > 0 and rng.random() < settings.failure_rate:
        stats.injected_failures += 1
        logger.info("failure_injected", extra={"method": request.method, "path": request.path})
        raise Unavailable("The CRM is temporarily unavailable; try again.")
    response = await handler(request)
    lose = request.method in WRITE_METHODS and response.status < 400
    if not lose or settings.lost_reply_rate <= 0 or rng.random() >= settings.lost_reply_rate:
        return response
    stats.lost_replies += 1
    if rng.random() < 0.5:
        logger.info("reply_lost", extra={"method": request.method, "path": request.path, "how": "500"})
        raise Internal("Internal server error.")
    stats.dropped_connections += 1
    logger.info("reply_lost", extra={"method": request.method, "path": request.path, "how": "disconnect"})
    return _drop_connection(request)


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket so the client sees a disconnect with no response at all.

    aiohttp then fails to write the returned response, treats it as a client disconnection
    and moves on without logging a traceback.
    """
    request[keys.dropped] = True
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)
