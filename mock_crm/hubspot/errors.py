"""HubSpot's error body: {"status": "error", "message", "correlationId", "category", ...extra}."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any


class HubSpotError(Exception):
    """An error answered with an HTTP status, a HubSpot category, a message and optional body fields."""

    def __init__(
        self, status: int, category: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        """Keep everything the body and the response need."""
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Return the JSON error body, with a fresh correlationId."""
        return error_body(self.category, self.message, **self.extra)


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error object (also used for the per-input errors of a batch)."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


def validation(message: str, **extra: Any) -> HubSpotError:
    """A 400 VALIDATION_ERROR (HubSpot answers bad input with 400, not 422)."""
    return HubSpotError(400, "VALIDATION_ERROR", message, **extra)


def not_found(kind: str, object_id: str) -> HubSpotError:
    """A 404 OBJECT_NOT_FOUND for an id no live object has."""
    return HubSpotError(404, "OBJECT_NOT_FOUND", f"resource not found: {kind} {object_id[:64]} does not exist")


def conflict(existing_id: str) -> HubSpotError:
    """A 409 CONFLICT naming the contact that already has the e-mail address."""
    return HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing_id}")


def rate_limited(policy: str, message: str) -> HubSpotError:
    """A 429 with the policy that was exceeded (TEN_SECONDLY_ROLLING, SECONDLY or DAILY)."""
    return HubSpotError(429, "RATE_LIMITS", message, errorType="RATE_LIMIT", policyName=policy,
                        requestId=str(uuid.uuid4()))  # fmt: skip
