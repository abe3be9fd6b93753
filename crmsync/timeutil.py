"""UTC timestamps rendered as ISO-8601 with a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Render a datetime as ISO-8601 UTC with microseconds and a Z suffix."""
    m = moment.astimezone(UTC)
    # Fixed width even before year 1000, so that these strings sort like the moments they name.
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


def now_iso() -> str:
    """Return the current time as an ISO-8601 UTC string."""
    return isoformat(utcnow())


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a naive one is taken as UTC. Raises ValueError."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 at +14:00: a valid string, an impossible UTC moment
        raise ValueError(f"timestamp out of range: {text[:40]!r}") from None


def normalise_iso(text: object) -> str:
    """Re-render any ISO-8601 timestamp in our one format, so timestamps compare as strings. Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("timestamp missing")
    return isoformat(parse_iso(text))
