"""The sign-in brute-force limit: failures counted per email and per client address, shared through the database."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from .errors import TooManyAttempts
from .store import signin_failures
from .store.database import Database

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A window is counted in this many time slices: each key keeps at most SLICES + 1 rows, and a failure is
# forgotten between one window and one window plus a slice after it happened.
SLICES = 10


def _key(kind: str, value: str) -> str:
    # Hashed: a fixed size whatever was typed, and no emails or addresses kept in this table.
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()


class SigninLimiter:
    """Refuses sign-ins for an email, or from an address, that had too many failures in the window."""

    def __init__(self, max_failures: int, window: float) -> None:
        self._max = max_failures
        self._window = max(1, round(window * 1000))  # milliseconds, as the table counts them
        self._slice = max(1, self._window // SLICES)
        # Attempts under way count as failures until they are known not to be, so that concurrent guesses
        # cannot all pass on one reading of the table. Checks take turns under the lock; an attempt that ends
        # during a check is released only after it, as that check's reading may predate the failure's commit.
        self._in_flight: Counter[str] = Counter()
        self._lock = asyncio.Lock()
        self._ended: list[str] = []

    async def guard(
        self, db: Database, email: str, address: str, attempt: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        """Run attempt() unless a key is over the limit (TooManyAttempts, nothing written); None is a failure."""
        if self._max <= 0:
            return await attempt()
        keys = (_key("email", email), _key("address", address))
        counts = await self._admit(db, keys)
        try:
            result = await attempt()
            if result is None:
                now = _now()
                await signin_failures.record(db, keys, now - now % self._slice, now - self._window - self._slice)
                for kind, key in zip(("email", "address"), keys, strict=True):
                    if counts[key] + 1 == self._max:
                        logger.warning("signin_limit_reached", extra={"kind": kind, "address": address})
            elif counts[keys[0]]:
                await signin_failures.clear(db, keys[0])  # the owner got in: their earlier typos no longer count
            return result
        finally:
            self._end(keys)

    async def _admit(self, db: Database, keys: signin_failures.Keys) -> Counter[str]:
        """Count the keys' recent failures and mark the attempt under way, or raise TooManyAttempts."""
        async with self._lock:
            try:
                now = _now()
                rows = await signin_failures.recent(db, keys, now - self._window - self._slice + 1)
                counts: Counter[str] = Counter()
                for key, _, failures in rows:
                    counts[key] += failures
                waits = [self._wait(key, counts[key], rows, now) for key in keys]
                if any(wait is not None for wait in waits):
                    raise TooManyAttempts(max(wait or 0 for wait in waits))
                self._in_flight.update(keys)
                return counts
            finally:
                self._release(self._ended)
                self._ended.clear()

    def _wait(self, key: str, stored: int, rows: list[tuple[str, int, int]], now: int) -> int | None:
        """Whole seconds until the key is under the limit again, or None when it is under it now."""
        left = stored + self._in_flight[key]
        if left < self._max:
            return None
        for row_key, bucket, failures in rows:  # oldest first: the first slices to age out
            if row_key == key:
                left -= failures
                if left < self._max:
                    return max(1, math.ceil((bucket + self._slice + self._window - now) / 1000))
        return 1  # over the limit only with attempts under way, which end within moments

    def _end(self, keys: signin_failures.Keys) -> None:
        if self._lock.locked():
            self._ended.extend(keys)
        else:
            self._release(keys)

    def _release(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]


def _now() -> int:
    # Wall-clock milliseconds: replicas share the table, so they must share the clock too.
    return int(time.time() * 1000)
