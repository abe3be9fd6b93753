"""Domain errors: each carries its HTTP status, machine code, message and extra body fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs


class ApiError(Exception):
    """An error with an HTTP status, a machine code, a sentence, and optional extra body fields."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        """Keep the message, response headers and extra body fields."""
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        return {"error": self.code, "message": self.message, **self.extra}


class InvalidRequest(ApiError):
    """The request is malformed (bad JSON, bad query, bad header)."""


class InvalidJson(ApiError):
    """The body is not parseable JSON."""

    code = "invalid_json"


class InvalidData(ApiError):
    """One or more body fields failed validation."""

    code = "invalid_data"

    def __init__(self, message: str, fields: Mapping[str, str]) -> None:
        """Carry the per-field reasons."""
        super().__init__(message, fields=dict(fields))


class NotFound(ApiError):
    """No record with that id."""

    status = 404
    code = "not_found"


class Duplicate(ApiError):
    """The e-mail address already belongs to another record."""

    status = 409
    code = "duplicate"

    def __init__(self, crm_id: str) -> None:
        """Name the record that holds the address."""
        super().__init__("A user with this email already exists.", crm_id=crm_id)


class IdempotencyKeyReused(ApiError):
    """An Idempotency-Key came back with a different body."""

    status = 422
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        """Use the fixed explanation."""
        super().__init__("This Idempotency-Key was already used with a different request body.")


class InvalidToken(ApiError):
    """Missing, malformed, forged or expired bearer token."""

    status = 401
    code = "invalid_token"

    def __init__(self, message: str) -> None:
        """Add the RFC 6750 challenge header."""
        super().__init__(message, headers={hdrs.WWW_AUTHENTICATE: 'Bearer error="invalid_token"'})


class RateLimited(ApiError):
    """The client's token bucket is empty."""

    status = 429
    code = "rate_limited"


class Unavailable(ApiError):
    """An injected failure."""

    status = 503
    code = "unavailable"


class Internal(ApiError):
    """A generic server failure (also used to simulate a lost reply)."""

    status = 500
    code = "internal"


class ScriptedFailure(ApiError):
    """A failure a test asked for with fail_next/fail_status: any 4xx or 5xx, before anything is done."""

    def __init__(self, status: int) -> None:
        """Answer with this status; a 4xx looks like a validation rejection, a 5xx like an outage."""
        if status < 500:
            super().__init__("Rejected by a scripted fault.", fields={"name": "rejected by a scripted fault"})
            self.code = "invalid_data"
        else:
            super().__init__("The CRM is temporarily unavailable (scripted fault).")
            self.code = "unavailable"
        self.status = status


class PreconditionFailed(ApiError):
    """If-Match named a version of the record that is no longer current."""

    status = 412
    code = "precondition_failed"
