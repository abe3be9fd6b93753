"""Which part of the fake a request targets, and the one middleware that renders HubSpot's error body."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_crm.areas import Area
from mock_crm.hubspot.errors import HubSpotError, error_body

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/v1/token"  # noqa: S105 (a path, not a secret)
ADMIN_PREFIX = "/_fake/"
_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 404: "OBJECT_NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 413: "VALIDATION_ERROR", 415: "VALIDATION_ERROR"}  # fmt: skip


def area_of(request: web.Request) -> Area:
    """Public (health), the OAuth token endpoint, admin (auth only) or API (auth, limits and faults)."""
    path = request.path
    if path == TOKEN_PATH:
        return Area.OAUTH
    if path.startswith(ADMIN_PREFIX):
        return Area.ADMIN
    if path.startswith("/crm/"):
        return Area.API
    return Area.PUBLIC


def is_search(request: web.Request) -> bool:
    """Search has its own, stricter rate limit."""
    return request.method == "POST" and request.path.endswith("/search")


def is_read(request: web.Request) -> bool:
    """A POST that only reads (search, batch/read): it changes nothing, so it has no "applied, reply lost"."""
    return is_search(request) or (request.method == "POST" and request.path.endswith("/batch/read"))


@web.middleware
async def hubspot_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into HubSpot's error body; log the unexpected ones."""
    try:
        return await handler(request)
    except HubSpotError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        category = _CATEGORIES.get(exc.status, "INTERNAL_ERROR" if exc.status >= 500 else "VALIDATION_ERROR")
        return web.json_response(error_body(category, exc.reason), status=exc.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        logger.exception("unhandled_error", extra={"method": request.method, "path": request.path})
        return web.json_response(error_body("INTERNAL_ERROR", "internal error"), status=500)
