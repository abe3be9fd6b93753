"""One JSON object per log line, with secrets scrubbed as a last line of defence."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from .timeutil import isoformat

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_BEARER = re.compile(r"(?i)(bearer|basic)\s+[\w.~+/=-]{8,}")


class JsonFormatter(logging.Formatter):
    """Render a record as a JSON line: ts, level, event, logger, then the record's extras."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "event": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._scrub(json.dumps(entry, default=str, ensure_ascii=False))

    def _scrub(self, line: str) -> str:
        if "eyJ" in line:
            line = _JWT.sub("[redacted-jwt]", line)
        lowered = line.lower()  # a cheap test first: the case-blind pattern costs more than a line's formatting
        if "bearer" in lowered or "basic" in lowered:
            line = _BEARER.sub(r"\1 [redacted]", line)
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return isoformat(datetime.fromtimestamp(seconds, UTC))[:-8]  # "2026-12-01T04:46:36"


def _timestamp(created: float) -> str:
    """ISO-8601 UTC with microseconds, as isoformat() writes it; the part up to the second is cached."""
    seconds = int(created)
    micros = round((created - seconds) * 1_000_000)
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return f"{_second(seconds)}.{micros:06d}Z"


def setup_logging(level: str, log_file: Path | None, secrets: Iterable[str] = ()) -> None:
    """Send JSON lines to stderr and, when given, to a file; replaces earlier handlers."""
    formatter = JsonFormatter(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log duplicates our request handling lines at INFO; keep it for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
