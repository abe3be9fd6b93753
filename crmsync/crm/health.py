"""How the most recent real exchanges with the CRM went, for /readyz: never a cached guess."""

from __future__ import annotations

import math
import time
from typing import Any

from ..timeutil import now_iso


class CrmHealth:
    """Updated on every real outcome (a reply, a failure, a token fetch); read by the readiness check."""

    def __init__(self) -> None:
        self.last_success_at: str | None = None
        self.failing_since: str | None = None
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self._last_outcome: float | None = None  # monotonic

    @property
    def ok(self) -> bool:
        """True when the most recent exchange succeeded."""
        return self._last_outcome is not None and self.consecutive_failures == 0

    def succeeded(self) -> None:
        """The CRM answered as it should."""
        self._last_outcome = time.monotonic()
        self.last_success_at = now_iso()
        self.failing_since = self.last_error = None
        self.consecutive_failures = 0

    def failed(self, error: str) -> None:
        """The CRM could not be reached, failed, or answered something unusable."""
        self._last_outcome = time.monotonic()
        if self.consecutive_failures == 0:
            self.failing_since = now_iso()
        self.consecutive_failures += 1
        self.last_error = error

    def idle_for(self) -> float:
        """Seconds since the last real outcome; infinite before the first."""
        return math.inf if self._last_outcome is None else time.monotonic() - self._last_outcome

    def to_json(self) -> dict[str, Any]:
        """The facts a person reading /readyz needs."""
        return {
            "last_success_at": self.last_success_at,
            "failing_since": self.failing_since,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
        }
