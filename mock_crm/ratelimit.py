"""The rate-limit middleware: 429 with Retry-After, and X-RateLimit-* headers on API responses."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm import keys
from mock_crm.areas import Area, area_of
from mock_crm.errors import RateLimited


@web.middleware
async def ratelimit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reject API requests over the client's limit; remember the headers for every response."""
    if area_of(request) is not Area.API:
        return await handler(request)
    decision = request.app[keys.limiter].take(request[keys.client])
    if decision is not None:
        request[keys.rate_headers] = decision.headers
        if not decision.allowed:
            request.app[keys.stats].rate_limited += 1
            raise RateLimited(
                "Too many requests; slow down.",
                headers={"Retry-After": str(decision.retry_after)},
                retry_after=decision.retry_after,
            )
    return await handler(request)


async def add_rate_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: copy the X-RateLimit-* headers onto whatever response goes out."""
    if isinstance(request, web.Request):
        headers = request.get(keys.rate_headers)
        if headers:
            response.headers.update(headers)
