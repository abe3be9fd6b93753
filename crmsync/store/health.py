"""Storage trouble episodes: the last write that failed for lack of storage, until one succeeds again."""

from __future__ import annotations

import logging
import time

from ..timeutil import now_iso

logger = logging.getLogger(__name__)

# After a write failed for lack of storage and none was tried for this long, a check makes one itself.
WRITE_PROBE_AFTER = 10.0


class StorageHealth:
    """Whether the last write failed for lack of storage; one WARNING line per episode, not per request."""

    def __init__(self) -> None:
        self.error: str | None = None  # why the last write failed, None once a write succeeds
        self.failing_since: str | None = None
        self._last_outcome = 0.0  # monotonic time of the last write's outcome

    def failed(self, reason: str) -> None:
        """Note a write the storage refused."""
        self._last_outcome = time.monotonic()
        if self.error is None:
            self.failing_since = now_iso()
            logger.warning("storage_unavailable", extra={"reason": reason})
        self.error = reason

    def wrote(self) -> None:
        """Note a committed write: an episode, if any, is over."""
        self._last_outcome = time.monotonic()
        if self.error is not None:
            logger.info("storage_recovered", extra={"failing_since": self.failing_since})
            self.error = self.failing_since = None

    def probe_due(self) -> bool:
        """True when failing and no write was tried for a while, so a check should try one itself."""
        return self.error is not None and time.monotonic() - self._last_outcome >= WRITE_PROBE_AFTER
