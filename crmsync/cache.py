"""A small in-process cache for hot lookups; every write to the cached rows must invalidate."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Cache(Generic[K, V]):
    """Least-recently-used entries up to a size."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.invalidations = 0  # read before a fill's first query: see put()

    def get(self, key: K) -> V | None:
        """The cached value, or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, since: int | None = None) -> None:
        """Remember a value, dropping the least recently used past the size.

        since is `invalidations` as it was before the value was read: after an invalidation meanwhile, the
        value may predate the write behind it and is not kept (else it would stay until the next write).
        """
        if self._size <= 0 or (since is not None and since != self.invalidations):
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def invalidate(self, key: K) -> None:
        """Forget a key after its row changed."""
        self.invalidations += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything (invalidations may have been missed)."""
        self.invalidations += 1
        self._entries.clear()


class RecentSet(Generic[K]):
    """Keys seen within the last max_age seconds: for facts another process may change, such as an account existing."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._seen: OrderedDict[K, float] = OrderedDict()  # oldest sighting first

    def __contains__(self, key: K) -> bool:
        seen = self._seen.get(key)
        return seen is not None and time.monotonic() - seen < self._max_age

    def add(self, key: K) -> None:
        """Note a key as seen now, and forget the sightings that have grown too old."""
        now = time.monotonic()
        self._seen.pop(key, None)
        self._seen[key] = now
        # Sightings are in age order, so the stale ones are at the front; each is dropped once: cheap.
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self._max_age:
                break
            del self._seen[oldest]
