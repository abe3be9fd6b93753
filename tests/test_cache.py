"""The in-process cache: what a write invalidated is never put back by a read that began before it."""

from __future__ import annotations

from crmsync.cache import Cache


def test_a_value_read_before_an_invalidation_is_not_kept() -> None:
    cache: Cache[str, str] = Cache(10)
    since = cache.invalidations  # a read of the row begins
    cache.invalidate("meeting")  # a write commits meanwhile and invalidates the row
    cache.put("meeting", "as read before the write", since)
    assert cache.get("meeting") is None
    since = cache.invalidations  # a read that began after the write keeps its value
    cache.put("meeting", "as written", since)
    assert cache.get("meeting") == "as written"
