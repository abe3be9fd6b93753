"""HubSpot's rate limits: X-HubSpot-RateLimit-* headers for the pacer, and what a 429's policyName means."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from ..retry import retry_after_seconds
from ..types import RateLimit, Throttled

DEFAULT_PAUSE = 1.0  # a rolling-window 429 that names no wait, as the transport does for any 429


def read_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The rolling limit a reply advertises (X-HubSpot-RateLimit-Max requests per -Interval-Milliseconds).

    HubSpot says how many requests are left but not when the window frees up; with none left, the pacer
    waits one whole interval, the longest a rolling window can take.
    """
    most = _number(headers.get("X-HubSpot-RateLimit-Max"))
    interval_ms = _number(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
    if most is None or interval_ms is None or most <= 0 or interval_ms <= 0:
        return None
    interval = interval_ms / 1000
    return RateLimit(most / interval, _number(headers.get("X-HubSpot-RateLimit-Remaining")), interval, window=interval)


def throttled(body: Any, headers: Mapping[str, str], now: datetime, daily_reset_zone: tzinfo) -> Throttled:
    """A 429's meaning: policyName DAILY waits until the next midnight in the account's time zone (when HubSpot
    resets daily limits); any other policy waits Retry-After, else one rate-limit interval, else a second."""
    policy = body.get("policyName") if isinstance(body, dict) else None
    policy = policy if isinstance(policy, str) else None
    if policy == "DAILY":
        return Throttled(True, seconds_until_midnight(now, daily_reset_zone), policy)
    hinted = retry_after_seconds(headers.get("Retry-After"))
    advertised = read_rate_limit(headers)
    if hinted is not None:
        wait = hinted
    elif advertised is not None and advertised.reset_seconds:
        wait = advertised.reset_seconds
    else:
        wait = DEFAULT_PAUSE
    return Throttled(False, wait, policy)


def seconds_until_midnight(now: datetime, zone: tzinfo) -> float:
    """Seconds from now (timezone-aware) until the next midnight in zone."""
    local = now.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)  # on the wall clock
    # Compared in UTC: between two datetimes of one tzinfo Python subtracts wall clocks, wrong across DST.
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None
