"""One log line per request: method, path, status, milliseconds and the caller's account; no bodies, no tokens."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from .api.errors import Handler
from .auth import account_id_key

logger = logging.getLogger(__name__)

# Ids a handler adds to its request's line (the id of the contact a POST /users created).
noted_key: web.RequestKey[dict[str, str]] = web.RequestKey("log_noted", dict)

# Probes and the dashboard's files would drown the rest: logged at DEBUG.
_QUIET = ("/healthz", "/readyz", "/metrics", "/static/")
CLIENT_GONE = 499  # the client hung up before the answer (nginx's code for it)


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time the request and log it once it has its final status (outermost, so errors are rendered)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect, or an error some middleware let through
        status = exc.status
        raise
    except (ConnectionError, asyncio.CancelledError):
        status = CLIENT_GONE
        raise
    finally:
        # INFO whatever the status: what went wrong has its own line, once (a storage outage once per
        # episode, not once per refused request; a bug as an ERROR with its traceback).
        level = logging.DEBUG if request.path.startswith(_QUIET) else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "request", extra={
                "method": request.method, "path": request.path, "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1), "account_id": request.get(account_id_key),
                **request.get(noted_key, {}),
            })  # fmt: skip


def note(request: web.Request, **ids: str) -> None:
    """Add ids to the request's log line: one line says what the request did, to what."""
    request.setdefault(noted_key, {}).update(ids)
