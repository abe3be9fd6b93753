"""JSON responses rendered with orjson: a few times faster than json.dumps on the hot paths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response of plain JSON types."""
    try:
        body = orjson.dumps(data)
    except orjson.JSONEncodeError:
        # orjson refuses strings that are not valid UTF-8 (a lone surrogate echoed back in an error
        # about a field name); the standard encoder escapes them instead.
        body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")
