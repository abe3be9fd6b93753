"""Domain exceptions and the one middleware that renders every error as JSON."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from .render import json_response

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error with an HTTP status, a machine-readable code and a sentence for a person."""

    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class InvalidCredentials(ApiError):
    status, code = 401, "invalid_credentials"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class DuplicateEmail(ApiError):
    status, code = 409, "duplicate_email"


class UpstreamRejected(ApiError):
    """The CRM refused what we asked of it."""

    status, code = 502, "crm_rejected"


class UpstreamUnavailable(ApiError):
    """The CRM could not be reached, or kept failing."""

    status, code = 503, "crm_unavailable"
    retry_after = 10


class StorageUnavailable(Exception):
    """The database cannot take writes (disk full, I/O errors); nothing of the request was stored.

    Not an ApiError on purpose: code that handles a refused request (a webhook records its refusals)
    must not take an outage for a refusal; this goes straight to the error middleware.
    """

    status, code = 503, "storage_unavailable"
    retry_after = 30

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(ApiError):
    """422 with a reason per field."""

    status, code = 422, "validation_failed"

    def __init__(self, fields: Mapping[str, str], message: str = "The request has invalid fields.") -> None:
        super().__init__(message, fields=dict(fields))


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """The JSON error body every endpoint uses."""
    return json_response({"error": code, "message": message, **extra}, status=status)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors, aiohttp's HTTP errors and surprises into JSON bodies."""
    try:
        return await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.code, exc.message, **exc.extra)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except StorageUnavailable as exc:  # logged once per episode where it was noted, not once per request
        response = error_response(exc.status, exc.code, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
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
