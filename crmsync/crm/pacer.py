"""Client-side pacing to the CRM's advertised rate limit, so a backlog drains without tripping it."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping

from .types import RateLimit

RateLimitReader = Callable[[Mapping[str, str]], RateLimit | None]


class Pacer:
    """A GCRA token bucket that learns the rate from the CRM's rate-limit headers and pauses on Retry-After.

    Which headers those are is the adapter's to say: `read` turns a reply's headers into a RateLimit.

    Each request reserves the next free slot synchronously, so concurrent workers share the budget
    without a lock. Until the CRM advertises a limit, nothing is paced.
    """

    def __init__(self, read: RateLimitReader, headroom: float = 0.95) -> None:
        self._read = read
        self._headroom = headroom  # pace a little under the limit: arrivals jitter on the way there
        self._limit: float | None = None
        self._window: float | None = None  # a rolling window the limit counts over, when the CRM says so
        self._share = 1.0  # this replica's share of the CRM's limit (1 / live replicas)
        self._interval: float | None = None
        self._tolerance = 0.0
        self._tat = 0.0  # theoretical arrival time of the next request
        self._paused_until = 0.0
        self.heard = False  # a reply has come, so the limit (or that there is none) is known

    @property
    def rate(self) -> float | None:
        """Requests per second we pace to, or None while unlimited."""
        return None if self._interval is None else 1 / self._interval

    def reserve(self) -> float:
        """Reserve a slot for one request; return how long to wait before sending it."""
        return self.reserve_after(0.0)

    def reserve_after(self, earliest: float) -> float:
        """Reserve a slot for one request to be sent no sooner than `earliest` seconds from now; return
        how long to wait before sending it (at least `earliest`)."""
        now = time.monotonic()
        start = max(now + earliest, self._paused_until)
        if self._interval is not None:
            start = max(start, self._tat - self._tolerance)
            self._tat = max(self._tat, start) + self._interval
        return start - now

    async def wait(self) -> None:
        """Wait for this request's slot."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow the limit the CRM advertises, and what it says is left of it."""
        self.heard = True
        advertised = self._read(headers)
        if advertised is None or advertised.per_second <= 0:
            return
        if advertised.per_second != self._limit or advertised.window != self._window:
            self._limit = advertised.per_second
            self._window = advertised.window
            self._retune()
        remaining, reset = advertised.remaining, advertised.reset_seconds
        if remaining is not None and remaining < 1 and reset:
            self._tat = max(self._tat, time.monotonic() + reset + self._tolerance)

    @property
    def share(self) -> float:
        """This replica's share of the CRM's limit."""
        return self._share

    @share.setter
    def share(self, share: float) -> None:
        if share != self._share:
            self._share = share
            self._retune()

    def _retune(self) -> None:
        if self._limit is None:
            return
        rate = self._limit * self._share
        self._interval = 1 / (rate * self._headroom)
        # Allow a small burst, well under the CRM's, so the replicas' buckets together never run ahead of it.
        burst = min(math.ceil(rate) // 2, 4) - 1
        if self._window is not None:
            # A rolling window admits `allowed` requests in any stretch of its length, whole ones: pace so that
            # per_window of them fall into one (evenly spaced, a hair apart), and burst only into what is left.
            allowed = rate * self._window
            per_window = max(1, math.floor(allowed * self._headroom))
            self._interval = self._window / per_window * 1.001
            burst = min(burst, math.floor(allowed) - per_window)
        self._tolerance = max(0, burst) * self._interval

    def pause(self, seconds: float) -> None:
        """Hold every request for a while (the CRM said Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
