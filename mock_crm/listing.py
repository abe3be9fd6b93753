"""GET /crm/users: changes since a timestamp, oldest first, with a stable opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from mock_crm import keys
from mock_crm.clock import format_ts, parse_ts
from mock_crm.errors import InvalidRequest
from mock_crm.store import SortKey

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def encode_cursor(key: SortKey) -> str:
    """Pack the last (updated_at, crm_id) of a page into an opaque string."""
    raw = json.dumps([format_ts(key[0]), key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """Unpack a cursor from encode_cursor, or raise InvalidRequest."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, crm_id = json.loads(raw)
        if not isinstance(crm_id, str):
            raise ValueError("crm_id")
        return parse_ts(stamp), crm_id
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise InvalidRequest("cursor is not a cursor this API returned.", fields={"cursor": "invalid"}) from None


def _limit(raw: str | None) -> int:
    """Parse limit (1..500, default 100), or raise InvalidRequest."""
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}.", fields={"limit": "invalid"})
    return int(raw)


async def list_users(request: web.Request) -> web.Response:
    """Return {"items", "next_cursor", "total"} of users with updated_at > updated_since (total: on every page)."""
    query = request.query
    unknown = sorted(set(query) - {"updated_since", "limit", "cursor"})
    if unknown:
        raise InvalidRequest("Unknown query parameter.", fields={name[:64]: "unknown" for name in unknown[:20]})
    since = None
    if "updated_since" in query:
        try:
            since = parse_ts(query["updated_since"])
        except ValueError as exc:
            raise InvalidRequest(f"updated_since {exc}.", fields={"updated_since": str(exc)}) from None
    cursor = query.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    store = request.app[keys.store]
    users, more = store.list_users(since, after, _limit(query.get("limit")))
    next_cursor = encode_cursor((users[-1].updated_at, users[-1].crm_id)) if more else None
    body = {"items": [user.to_json() for user in users], "next_cursor": next_cursor, "total": store.count_users(since)}
    return web.json_response(body)
