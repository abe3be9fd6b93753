"""Live fault settings (rate limit, failures, lost replies, latency, garbled replies) that admins can change."""

from __future__ import annotations

import math
from typing import Any

import attrs

from mock_crm.config import MockConfig
from mock_crm.errors import InvalidData
from mock_crm.validation import require_object


@attrs.define
class FaultSettings:
    """The misbehaviour currently applied to API requests."""

    rate_limit: float
    rate_burst: int
    failure_rate: float
    lost_reply_rate: float
    latency_ms: float
    # A scripted fault for deterministic tests: the next fail_next API requests get fail_status.
    fail_next: int = 0
    fail_status: int = 503
    # A CRM that merges duplicates: the next merge_creates_next creates answer 201 with its newest record.
    merge_creates_next: int = 0
    # The token endpoint is reliable unless asked: it then holds each request this long (lowering it lets go).
    token_latency_ms: float = 0.0
    # The next garble_next successful API replies keep their status but carry a broken body.
    garble_next: int = 0

    @classmethod
    def from_config(cls, config: MockConfig) -> FaultSettings:
        """Start from the configured values."""
        return cls(
            rate_limit=config.rate_limit,
            rate_burst=config.rate_burst,
            failure_rate=config.failure_rate,
            lost_reply_rate=config.lost_reply_rate,
            latency_ms=config.latency_ms,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the settings as JSON."""
        return attrs.asdict(self)

    def apply(self, body: Any) -> None:
        """Validate a partial update and apply all of it, or raise InvalidData and change nothing."""
        data = require_object(body)
        fields: dict[str, str] = {}
        clean: dict[str, float] = {}
        for key, value in data.items():
            check = _CHECKS.get(key)
            if check is None:
                if len(fields) < 20:  # keep a hostile body from bloating the error
                    fields[key[:64]] = "unknown field"
                continue
            reason = check(value)
            if reason:
                fields[key] = reason
            else:
                clean[key] = value
        if not data:
            raise InvalidData("Give at least one setting to change.", {})
        if fields:
            raise InvalidData("Some settings are invalid.", fields)
        if "rate_limit" in clean and "rate_burst" not in clean:
            clean["rate_burst"] = max(1, math.ceil(clean["rate_limit"]))
        for key, value in clean.items():
            setattr(self, key, int(value) if key in _WHOLE else float(value))


def _number(value: Any, low: float, high: float) -> str | None:
    """Return why value is not a finite number in [low, high], or None if it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value) or not low <= value <= high:
        return f"must be between {low:g} and {high:g}"
    return None


def _burst(value: Any) -> str | None:
    """Return why value is not a whole number >= 1, or None if it is."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    return None if 1 <= value <= 1_000_000 else "must be between 1 and 1000000"


def _whole(value: Any, low: int, high: int) -> str | None:
    """Return why value is not a whole number in [low, high], or None if it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    return None if low <= value <= high else f"must be between {low} and {high}"


_WHOLE = ("rate_burst", "fail_next", "fail_status", "merge_creates_next", "garble_next")

_CHECKS = {
    "fail_next": lambda value: _whole(value, 0, 1_000_000),
    "fail_status": lambda value: _whole(value, 400, 599),
    "merge_creates_next": lambda value: _whole(value, 0, 1_000_000),
    "rate_limit": lambda value: _number(value, 0, 1_000_000),
    "rate_burst": _burst,
    "failure_rate": lambda value: _number(value, 0, 1),
    "lost_reply_rate": lambda value: _number(value, 0, 1),
    "latency_ms": lambda value: _number(value, 0, 60_000),
    "token_latency_ms": lambda value: _number(value, 0, 600_000),
    "garble_next": lambda value: _whole(value, 0, 1_000_000),
}
