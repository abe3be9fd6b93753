"""The one place where errors become HTTP answers: JSON {"error": code, "message": text}, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import (
    BadRequest,
    Conflict,
    DuplicateEmail,
    InvalidCredentials,
    NotFound,
    RequestTimeout,
    RetryLater,
    ServiceError,
    TooManyAttempts,
    Unauthorized,
    UpstreamRejected,
    UpstreamUnavailable,
    ValidationFailed,
)
from ..render import json_response
from ..store.errors import StorageUnavailable, TransientConflict

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# status, code, and Retry-After seconds for the errors a client may simply send again later
_ANSWERS: dict[type[Exception], tuple[int, str, int | None]] = {
    BadRequest: (400, "bad_request", None),
    Unauthorized: (401, "unauthorized", None),
    InvalidCredentials: (401, "invalid_credentials", None),
    NotFound: (404, "not_found", None),
    RequestTimeout: (408, "request_timeout", None),
    Conflict: (409, "conflict", None),
    DuplicateEmail: (409, "duplicate_email", None),
    ValidationFailed: (422, "validation_failed", None),
    TooManyAttempts: (429, "too_many_attempts", None),
    UpstreamRejected: (502, "crm_rejected", None),
    UpstreamUnavailable: (503, "crm_unavailable", 10),
    RetryLater: (503, "retry_later", 5),
    StorageUnavailable: (503, "storage_unavailable", 30),
    TransientConflict: (503, "busy", 1),
}
_STORAGE_MESSAGE = "The database cannot store changes right now ({}); nothing was saved. Try again shortly."
_BUSY_MESSAGE = "The database was busy with a conflicting change; nothing was saved. Try again."

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """The JSON error body every endpoint uses."""
    return json_response({"error": code, "message": message, **extra}, status=status)


def answer(exc: ServiceError | StorageUnavailable | TransientConflict) -> web.Response:
    """The HTTP answer for a domain or storage error."""
    status, code, retry_after = _ANSWERS[type(exc)]
    if isinstance(exc, ServiceError):
        response = error_response(status, code, exc.message, **exc.extra)
    elif isinstance(exc, StorageUnavailable):  # logged once per episode where it was noted, not per request
        response = error_response(status, code, _STORAGE_MESSAGE.format(exc.reason))
    else:
        response = error_response(status, code, _BUSY_MESSAGE)
    if isinstance(exc, TooManyAttempts):
        retry_after = exc.retry_after
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if isinstance(exc, RequestTimeout):
        response.force_close()  # what is left of the body is not read
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors, storage trouble, aiohttp's HTTP errors and surprises into JSON bodies."""
    try:
        return await handler(request)
    except (ServiceError, StorageUnavailable, TransientConflict) as exc:
        return answer(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, code, exc.reason)
        for name in ("Allow", "WWW-Authenticate", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except ConnectionError:
        raise  # a client that hung up: aiohttp drops the request quietly
    except Exception:
        logger.exception("unhandled_error", extra={"method": request.method, "path": request.path})
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
