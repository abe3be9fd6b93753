"""Capture every log record, rendered as crmsync writes it (without its scrubbing safety net)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

from crmsync.logs import JsonFormatter


@contextlib.contextmanager
def captured_logs(level: int) -> Iterator[io.StringIO]:
    """Every record from every logger at level and above, one JSON line each, in a StringIO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(secrets=()))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
