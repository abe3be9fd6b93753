"""The mock CRM's rate-limit headers (X-RateLimit-Limit per second, -Remaining, -Reset in seconds)."""

from __future__ import annotations

from collections.abc import Mapping

from ..types import RateLimit


def read_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The limit a reply advertises, or None when it names none."""
    limit = _number(headers.get("X-RateLimit-Limit"))
    if limit is None:
        return None
    return RateLimit(limit, _number(headers.get("X-RateLimit-Remaining")), _number(headers.get("X-RateLimit-Reset")))


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
