"""One HTTP try against the CRM, as a user's history shows it."""

from __future__ import annotations

import attrs


@attrs.frozen
class Attempt:
    """One try: what, when, how long, and how it ended."""

    operation: str
    started_at: str
    finished_at: str
    duration_ms: float
    outcome: str
    http_status: int | None = None
    error: str | None = None
