"""Rate limits and injected faults on API requests: 429s, latency, failures (423/502/504/524...), lost replies."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm import keys as mock_keys
from mock_crm.areas import WRITE_METHODS, Area
from mock_crm.faults import _drop_connection
from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import HubSpotError
from mock_crm.hubspot.middleware import area_of, is_read, is_search

logger = logging.getLogger(__name__)

_FAILURES = {
    423: ("LOCKED", "The resource is locked; try again in a couple of seconds."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout."),
    524: ("TIMEOUT", "The request timed out."),
}


@web.middleware
async def ratelimit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request against its token's limits (429 when over); keep the headers for the reply."""
    if area_of(request) is not Area.API:
        return await handler(request)
    try:
        request[keys.rate_headers] = request.app[keys.limits].take(request[keys.token], is_search(request))
    except HubSpotError:
        request.app[mock_keys.stats].rate_limited += 1
        raise
    return await handler(request)


async def add_rate_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: the X-HubSpot-RateLimit-* headers go on whatever reply goes out."""
    if isinstance(request, web.Request) and request.get(keys.rate_headers):
        response.headers.update(request[keys.rate_headers])


def _failure(status: int) -> HubSpotError:
    """An injected failure with HubSpot-like wording."""
    category, message = _FAILURES.get(status, ("INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR",
                                               "Injected failure."))  # fmt: skip
    return HubSpotError(status, category, message)


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Delay, fail before doing anything, or apply a write and lose its reply (500 or a closed socket)."""
    if area_of(request) is not Area.API:
        return await handler(request)
    app = request.app
    settings, rng, stats = app[keys.faults], app[mock_keys.rng], app[mock_keys.stats]
    if settings.latency_ms > 0:
        await asyncio.sleep(settings.latency_ms / 1000)
    if settings.fail_next > 0:
        settings.fail_next -= 1
        stats.injected_failures += 1
        raise _failure(settings.fail_status)
    if settings.failure_rate > 0 and rng.random() < settings.failure_rate:
        stats.injected_failures += 1
        raise _failure(settings.failure_status)
    response = await handler(request)
    lose = request.method in WRITE_METHODS and response.status < 400 and not is_read(request)
    if not lose or settings.lost_reply_rate <= 0 or rng.random() >= settings.lost_reply_rate:
        return response
    stats.lost_replies += 1
    if rng.random() < 0.5:
        logger.info("reply_lost", extra={"method": request.method, "path": request.path, "how": "502"})
        raise _failure(502)
    stats.dropped_connections += 1
    logger.info("reply_lost", extra={"method": request.method, "path": request.path, "how": "disconnect"})
    return _drop_connection(request)
