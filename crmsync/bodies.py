"""Request bodies are read before any handler runs, within a time limit, so a slow client cannot hold one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from .api.errors import Handler
from .errors import BadRequest, RequestTimeout
from .keys import config_key
from .validation import MAX_BODY

logger = logging.getLogger(__name__)

H = TypeVar("H", bound=Callable[..., object])
LARGEST_BODY = 2 * 1024 * 1024  # the app's client_max_size: no route may allow more


def body_limit(size: int) -> Callable[[H], H]:
    """Let a handler take bodies up to size bytes (at most LARGEST_BODY) instead of MAX_BODY."""

    def mark(handler: H) -> H:
        handler.__crmsync_body_limit__ = min(size, LARGEST_BODY)  # type: ignore[attr-defined]
        return handler

    return mark


def _too_large(limit: int, size: int) -> web.HTTPRequestEntityTooLarge:
    return web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within CRMSYNC_BODY_TIMEOUT, or answer 408; handlers then read it from memory."""
    if not request.body_exists:
        return await handler(request)
    limit = getattr(request.match_info.handler, "__crmsync_body_limit__", MAX_BODY)
    if (request.content_length or 0) > limit:
        raise _too_large(limit, request.content_length or 0)
    # A body that came whole with the head (most do), its length checked above, is in memory: no timer.
    if request.content_length is not None and request.content.is_eof():
        return await handler(request)
    timeout = request.app[config_key].body_timeout
    where = {"method": request.method, "path": request.path}
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            body = await request.read()  # request.read() keeps the bytes: a handler's own read() returns them
    except TimeoutError:
        logger.info("request_body_timeout", extra={**where, "timeout": timeout})
        raise RequestTimeout(f"The request body did not arrive within {timeout:g} seconds.") from None
    except ConnectionError:
        # The client hung up mid-body: an everyday event, not a bug, so no traceback. Nobody reads the answer.
        logger.info("request_body_aborted", extra=where)
        raise BadRequest("The connection closed before the whole body arrived.") from None
    if len(body) > limit:  # a chunked body has no Content-Length to refuse it by
        raise _too_large(limit, len(body))
    return await handler(request)
