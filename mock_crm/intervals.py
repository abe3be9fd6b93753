"""Timing of idempotent creates on the wire: a middleware records, GET /crm/_admin/intervals shows."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm import keys


def note_keys(request: web.Request, idempotency_keys: list[str]) -> None:
    """Called by a create handler: this request carries these keys (its interval is recorded for each)."""
    request[keys.carried_keys] = idempotency_keys


@web.middleware
async def inflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request from its arrival; record the interval under each idempotency key it carried."""
    started = time.time()
    try:
        return await handler(request)
    finally:
        ended = time.time()
        for key in request.get(keys.carried_keys, ()):
            request.app[keys.inflight].record(key, started, ended)


async def get_intervals(request: web.Request) -> web.Response:
    """GET /crm/_admin/intervals: per idempotency key, when its requests were in flight, and any overlaps."""
    return web.json_response(request.app[keys.inflight].to_json())
