"""When each idempotent create was in flight: per Idempotency-Key, the intervals of the requests carrying it.

A request's interval runs from its arrival (before any latency or fault) to its answer (or the dropped
connection). Two intervals of one key that overlap mean two senders pushed the same record at once,
which a cluster of crmsync replicas must never do; GET /crm/_admin/intervals shows them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

Interval = tuple[float, float]


class InFlight:
    """Intervals by idempotency key, in wall-clock seconds."""

    def __init__(self) -> None:
        self.intervals: defaultdict[str, list[Interval]] = defaultdict(list)

    def record(self, key: str, started: float, ended: float) -> None:
        """Remember one request's interval for this key."""
        self.intervals[key].append((started, ended))

    def overlaps(self) -> dict[str, list[Interval]]:
        """The keys whose requests overlapped in time, with all their intervals."""
        found = {}
        for key, spans in self.intervals.items():
            ordered, latest_end = sorted(spans), float("-inf")
            for started, ended in ordered:
                if started < latest_end:
                    found[key] = ordered
                    break
                latest_end = max(latest_end, ended)
        return found

    def to_json(self) -> dict[str, Any]:
        """The intervals and the overlaps, for GET /crm/_admin/intervals."""
        return {
            "keys": len(self.intervals),
            "requests": sum(len(spans) for spans in self.intervals.values()),
            "intervals": {key: [list(span) for span in spans] for key, spans in self.intervals.items()},
            "overlaps": {key: [list(span) for span in spans] for key, spans in self.overlaps().items()},
        }
