"""Token buckets per client, following the live rate and burst settings."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

from mock_crm.settings import FaultSettings


@attrs.define
class Bucket:
    """Tokens left for one client under the rate and burst it was made with."""

    tokens: float
    stamp: float
    rate: float
    burst: int


@attrs.frozen
class Decision:
    """Whether a request may pass, and the numbers for its headers."""

    allowed: bool
    headers: dict[str, str]
    retry_after: int


class RateLimiter:
    """Token buckets keyed by client id, following the live fault settings."""

    def __init__(self, settings: FaultSettings, clock: Callable[[], float] = time.monotonic) -> None:
        """Read rate and burst from settings on every request."""
        self._settings = settings
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def take(self, client: str) -> Decision | None:
        """Spend one token for client if one is there; None when rate limiting is off."""
        rate, burst = self._settings.rate_limit, self._settings.rate_burst
        if rate <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            # New client, or an admin changed the limits: start from a full bucket.
            bucket = self._buckets[client] = Bucket(float(burst), now, rate, burst)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        wait = 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / rate
        headers = {
            "X-RateLimit-Limit": f"{rate:g}",
            "X-RateLimit-Remaining": str(math.floor(bucket.tokens)),
            "X-RateLimit-Reset": "0" if wait == 0 else f"{wait:.3f}",
        }
        return Decision(allowed, headers, max(1, math.ceil(wait)))
