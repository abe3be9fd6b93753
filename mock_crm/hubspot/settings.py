"""Live settings of the HubSpot fake (limits and faults) that GET/PUT /_fake/faults show and change."""

from __future__ import annotations

import math
from typing import Any

import attrs

from mock_crm.hubspot.config import HubSpotConfig
from mock_crm.hubspot.errors import validation

_TRANSIENT = (423, 429, 500, 502, 503, 504, 524)


@attrs.define
class FakeFaults:
    """Rate limits and injected misbehaviour now in force."""

    rate_max: int
    rate_interval_ms: int
    daily_max: int
    search_rate: int
    failure_rate: float
    failure_status: int
    lost_reply_rate: float
    latency_ms: float
    daily_exhausted: bool = False  # every API request answers 429 DAILY until switched off
    fail_next: int = 0  # the next fail_next API requests answer fail_status, before anything is done
    fail_status: int = 502

    @classmethod
    def from_config(cls, config: HubSpotConfig) -> FakeFaults:
        """Start from the configured values."""
        names = ("rate_max", "rate_interval_ms", "daily_max", "search_rate", "failure_rate", "failure_status",
                 "lost_reply_rate", "latency_ms")  # fmt: skip
        return cls(**{name: getattr(config, name) for name in names})

    def to_json(self) -> dict[str, Any]:
        """Return the settings as JSON."""
        return attrs.asdict(self)

    def apply(self, body: Any) -> None:
        """Validate a partial update and apply all of it, or raise a 400 and change nothing."""
        if not isinstance(body, dict) or not body:
            raise validation("Give a JSON object with at least one setting to change.")
        reasons = {str(key)[:64]: _CHECKS[key](value) if key in _CHECKS else "unknown setting"
                   for key, value in list(body.items())[:40]}  # fmt: skip
        reasons = {key: reason for key, reason in reasons.items() if reason}
        if reasons:
            raise validation("Some settings are invalid.", context={key: [why] for key, why in reasons.items()})
        for key, value in body.items():
            setattr(self, key, value)


def _whole(low: int, high: int) -> Any:
    """A check for a whole number in [low, high]."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be a whole number between {low} and {high}"
        return None

    return check


def _number(low: float, high: float) -> Any:
    """A check for a finite number in [low, high]."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        return None if math.isfinite(value) and low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _status(value: Any) -> str | None:
    """A check for a status the fake can inject."""
    return None if value in _TRANSIENT or _whole(400, 599)(value) is None else "must be an HTTP status 400-599"


_CHECKS = {
    "rate_max": _whole(1, 1_000_000),
    "rate_interval_ms": _whole(1, 86_400_000),
    "daily_max": _whole(1, 1_000_000_000),
    "search_rate": _whole(1, 1_000_000),
    "failure_rate": _number(0, 1),
    "failure_status": _status,
    "lost_reply_rate": _number(0, 1),
    "latency_ms": _number(0, 60_000),
    "daily_exhausted": lambda value: None if isinstance(value, bool) else "must be true or false",
    "fail_next": _whole(0, 1_000_000),
    "fail_status": _status,
}
