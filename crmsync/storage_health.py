"""Storage trouble episodes: the last write that failed for lack of storage, until one succeeds again."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from .errors import StorageUnavailable
from .timeutil import now_iso

logger = logging.getLogger(__name__)

# After a write failed for lack of storage and none was tried for this long, a check makes one itself.
WRITE_PROBE_AFTER = 10.0
# Free space that check wants first: a small write can fit in what a failed big one left, and prove nothing.
PROBE_ROOM = 1 << 20


class StorageHealth:
    """Whether the last write failed for lack of storage; one WARNING line per episode, not per request."""

    def __init__(self) -> None:
        self.error: str | None = None  # why the last write failed, None once a write succeeds
        self.failing_since: str | None = None
        self._last_outcome = 0.0  # monotonic time of the last write's outcome

    def failed(self, reason: str, detail: str) -> StorageUnavailable:
        """Note a write the storage refused; return the error to raise in its place."""
        self._last_outcome = time.monotonic()
        if self.error is None:
            self.failing_since = now_iso()
            logger.warning("storage_unavailable", extra={"reason": reason, "error": detail[:200]})
        self.error = reason
        return StorageUnavailable(f"The database cannot store changes right now ({reason}); nothing was saved.")

    def wrote(self) -> None:
        """Note a committed write: an episode, if any, is over."""
        self._last_outcome = time.monotonic()
        if self.error is not None:
            logger.info("storage_recovered", extra={"failing_since": self.failing_since})
            self.error = self.failing_since = None

    async def probe_due(self, directory: Path) -> bool:
        """True when failing, no write was tried for a while, and the disk has room: a check should try one."""
        if self.error is None or time.monotonic() - self._last_outcome < WRITE_PROBE_AFTER:
            return False
        stats = await asyncio.to_thread(os.statvfs, directory)
        return stats.f_bavail * stats.f_frsize >= PROBE_ROOM
