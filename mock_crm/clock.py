"""UTC timestamps: formatting, strict parsing, and a clock that never repeats a value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_TICK = timedelta(microseconds=1)


def format_ts(moment: datetime) -> str:
    """Render a UTC datetime as `2026-11-21T18:42:37.123456Z`."""
    m = moment.astimezone(UTC)
    # Fixed width even before year 1000 (strftime would write '999'), so it parses back and sorts.
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 timestamp with a zone into an aware UTC datetime, or raise ValueError."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise ValueError("must be an ISO-8601 timestamp such as 2026-11-21T18:42:37.123456Z")
    # A "+00:00" offset arrives as " 00:00" when a client forgets to escape "+" in a query.
    candidate = text.replace(" ", "+") if "T" in text else text
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError("must be an ISO-8601 timestamp such as 2026-11-21T18:42:37.123456Z") from None
    if moment.tzinfo is None:
        raise ValueError("must include a time zone, e.g. a trailing Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


class Clock:
    """Hands out strictly increasing UTC datetimes, bumping by 1 µs when the wall clock stalls."""

    def __init__(self) -> None:
        """Start before any real time."""
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """Return a UTC datetime later than every one returned before."""
        moment = datetime.now(UTC)
        if moment <= self._last:
            moment = self._last + _TICK
        self._last = moment
        return moment
