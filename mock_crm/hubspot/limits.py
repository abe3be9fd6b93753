"""HubSpot's rate limits per token: a rolling window (TEN_SECONDLY_ROLLING), a daily count, and search's own 5/s."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime

from mock_crm.hubspot.errors import HubSpotError, rate_limited
from mock_crm.hubspot.settings import FakeFaults


class RateLimits:
    """Counts requests per token and decides whether the next one may pass."""

    def __init__(self, settings: FakeFaults, clock: Callable[[], float] = time.monotonic) -> None:
        """Read the limits from the live settings on every request."""
        self._settings = settings
        self._clock = clock
        self._window: defaultdict[str, deque[float]] = defaultdict(deque)
        self._search: defaultdict[str, deque[float]] = defaultdict(deque)
        self._daily: defaultdict[str, int] = defaultdict(int)
        self._day = _today()

    def take(self, token: str, search: bool) -> dict[str, str]:
        """Count one request for token; return its rate-limit headers or raise a 429 HubSpotError."""
        settings, now = self._settings, self._clock()
        if self._day != _today():  # HubSpot's daily limit resets at midnight (the fake uses UTC)
            self._daily.clear()
            self._day = _today()
        used_today = self._daily[token]
        if settings.daily_exhausted or used_today >= settings.daily_max:
            raise rate_limited("DAILY", "You have reached your daily limit.")
        if search:
            _take(self._search[token], now, 1.0, settings.search_rate, "SECONDLY", "secondly")
            self._daily[token] += 1
            return {}  # HubSpot's search answers carry no rate-limit headers
        window = self._window[token]
        interval = settings.rate_interval_ms / 1000
        _take(window, now, interval, settings.rate_max, "TEN_SECONDLY_ROLLING", "ten_secondly_rolling")
        self._daily[token] += 1
        return {
            "X-HubSpot-RateLimit-Max": str(settings.rate_max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, settings.rate_max - len(window))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(settings.rate_interval_ms),
            "X-HubSpot-RateLimit-Daily": str(settings.daily_max),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, settings.daily_max - self._daily[token])),
        }


def _take(window: deque[float], now: float, interval: float, limit: int, policy: str, name: str) -> None:
    """Drop stamps older than interval, then add now, or raise the 429 when limit are already in it."""
    while window and window[0] <= now - interval:
        window.popleft()
    if len(window) >= limit:
        raise _limited(policy, name)
    window.append(now)


def _limited(policy: str, name: str) -> HubSpotError:
    """The 429 for a window limit."""
    return rate_limited(policy, f"You have reached your {name} limit.")


def _today() -> str:
    """The current UTC date, the daily counter's key."""
    return datetime.now(UTC).date().isoformat()
