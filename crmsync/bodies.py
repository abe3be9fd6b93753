"""Request bodies are read before any handler runs, within a time limit, so a slow client cannot hold one."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .api.errors import Handler
from .errors import BadRequest, RequestTimeout
from .keys import config_key

logger = logging.getLogger(__name__)


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within CRMSYNC_BODY_TIMEOUT, or answer 408; handlers then read it from memory."""
    timeout = request.app[config_key].body_timeout
    if not request.body_exists or timeout <= 0:
        return await handler(request)
    where = {"method": request.method, "path": request.path}
    try:
        async with asyncio.timeout(timeout):
            await request.read()  # request.read() keeps the bytes: a handler's own read() returns them
    except TimeoutError:
        logger.info("request_body_timeout", extra={**where, "timeout": timeout})
        raise RequestTimeout(f"The request body did not arrive within {timeout:g} seconds.") from None
    except ConnectionError:
        # The client hung up mid-body: an everyday event, not a bug, so no traceback. Nobody reads the answer.
        logger.info("request_body_aborted", extra=where)
        raise BadRequest("The connection closed before the whole body arrived.") from None
    return await handler(request)
