"""Read request bodies defensively: bad bytes, bad JSON or deep nesting become a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from mock_crm.errors import InvalidJson


async def read_json(request: web.Request) -> Any:
    """Return the parsed JSON body, or raise InvalidJson."""
    raw = await request.read()
    if not raw.strip():
        raise InvalidJson("The request body must be JSON.")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidJson("The request body is not valid JSON.") from None
