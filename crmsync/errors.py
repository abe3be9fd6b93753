"""What can go wrong, in the service's own terms; api/errors.py maps each to an HTTP answer, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """A refusal with a sentence for a person and optional details (sent as extra JSON fields)."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(ServiceError):
    """The request cannot be read (not JSON, not an object)."""


class Unauthorized(ServiceError):
    """No valid token."""


class InvalidCredentials(ServiceError):
    """The email or the password is wrong (never said which)."""


class NotFound(ServiceError):
    """No such thing, or not the caller's."""


class Conflict(ServiceError):
    """The request clashes with the current state; trying again later may work."""


class DuplicateEmail(ServiceError):
    """Another user or account already has this email."""


class ValidationFailed(ServiceError):
    """Some fields are wrong; a reason per field."""

    def __init__(self, fields: Mapping[str, str], message: str = "The request has invalid fields.") -> None:
        super().__init__(message, fields=dict(fields))


class RequestTimeout(ServiceError):
    """The request body did not arrive in time; what is left of it is not waited for."""


class TooManyAttempts(ServiceError):
    """Too many failed sign-ins for this email or from this address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins; try again in {retry_after} seconds.")
        self.retry_after = retry_after


class RetryLater(ServiceError):
    """Part of what was sent cannot be taken yet (a push in flight, a contact not linked yet): send it again."""


class UpstreamRejected(ServiceError):
    """The CRM refused what we asked of it."""


class UpstreamUnavailable(ServiceError):
    """The CRM could not be reached, or kept failing."""
