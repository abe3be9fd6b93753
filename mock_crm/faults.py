"""Injected misbehaviour: added latency, 503 failures, writes whose reply is lost, and garbled replies."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm import keys
from mock_crm.areas import WRITE_METHODS, Area, area_of
from mock_crm.errors import Internal, ScriptedFailure, Unavailable

logger = logging.getLogger(__name__)

# Only the data API misbehaves: /crm/token, /crm/_admin and /healthz stay reliable so that tests
# (and people) can always get a token and turn the faults back off. The one exception is asked for
# explicitly: token_latency_ms holds token requests, to show what a hanging token endpoint does.

_HELD_STEP = 0.05  # how often a held token request looks at token_latency_ms again


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
    if settings.garble_next > 0 and response.status in (200, 201) and isinstance(response, web.Response):
        settings.garble_next -= 1
        return _garbled(request, response)
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


async def hold_token_request(request: web.Request) -> None:
    """Wait token_latency_ms before a token is issued; lowering the setting releases waiting requests."""
    settings = request.app[keys.faults]
    started = time.monotonic()
    # Polled rather than signalled, so that FaultSettings stays a plain value the admin API edits.
    while (remaining := settings.token_latency_ms / 1000 - (time.monotonic() - started)) > 0:  # noqa: ASYNC110
        await asyncio.sleep(min(remaining, _HELD_STEP))


def _garbled(request: web.Request, response: web.Response) -> web.Response:
    """The same status with a broken body, in turn: not JSON, the record in an array, the record in an envelope.

    The handler has run, so a write is applied (and an idempotent create replays its real answer).
    """
    stats = request.app[keys.stats]
    shape = stats.garbled_replies % 3
    stats.garbled_replies += 1
    logger.info("reply_garbled", extra={"method": request.method, "path": request.path, "shape": shape})
    if shape == 0:
        return web.Response(status=response.status, text="<html><body>502 Bad Gateway</body></html>",
                            content_type="text/html")  # fmt: skip
    record = json.loads(response.body) if isinstance(response.body, bytes) else {}
    body = [record] if shape == 1 else {"data": record}
    return web.json_response(body, status=response.status)
