"""Cursor paging shared by the list endpoints: ?limit= and an opaque ?cursor=."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from ..errors import ValidationFailed

DEFAULT_LIMIT, MAX_LIMIT = 50, 500


def page_params(request: web.Request, prefix: str, errors: dict[str, str] | None = None) -> tuple[int, int]:
    """(limit, seq to start after) from the query; raises ValidationFailed with these and earlier errors."""
    errors = dict(errors or {})
    query = request.query
    limit = DEFAULT_LIMIT
    if "limit" in query:
        try:
            limit = int(query["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            errors["limit"] = f"must be a whole number from 1 to {MAX_LIMIT}"
    after = _decode(query.get("cursor") or None, prefix)
    if after is None:
        errors["cursor"] = "is not a cursor this API returned"
    if errors:
        raise ValidationFailed(errors)
    return limit, after or 0


def encode_cursor(prefix: str, seq: int | None) -> str | None:
    """The opaque cursor for the page after seq, or None at the end."""
    return None if seq is None else base64.urlsafe_b64encode(f"{prefix}:{seq}".encode()).decode().rstrip("=")


def _decode(cursor: str | None, prefix: str) -> int | None:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, seq = text.split(":")
        return int(seq) if kind == prefix and seq.isdigit() and int(seq) < 2**63 else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
