"""The one error middleware: every error, web.HTTPException included, becomes JSON {"error", "message"}."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from mock_crm.errors import ApiError

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    """Render an error body as a JSON response."""
    return web.json_response(dict(body), status=status, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    """Render aiohttp's own HTTP errors (404 route, 405, 413, ...) in our JSON shape."""
    code = _HTTP_CODES.get(exc.status, "internal" if exc.status >= 500 else f"http_{exc.status}")
    drop = {hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH}
    headers = {name: value for name, value in exc.headers.items() if name not in drop}
    return error_response(exc.status, {"error": code, "message": exc.reason}, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into a JSON error response; log the unexpected ones."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.body(), exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc)
    except (asyncio.CancelledError, ConnectionError):
        raise  # a client that hung up: aiohttp drops the request quietly
    except Exception:
        logger.exception("unhandled_error", extra={"method": request.method, "path": request.path})
        return error_response(500, {"error": "internal", "message": "Internal server error."})
