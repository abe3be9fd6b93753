"""GET /conflicts: fields both sides changed, as resolved (the CRM's value won), newest first."""

from __future__ import annotations

from aiohttp import web

from ..keys import db_key
from ..render import json_response
from ..store import history
from .paging import encode_cursor, page_params


async def list_conflicts(request: web.Request) -> web.Response:
    """A page of resolved conflicts of every contact, newest first."""
    limit, before = page_params(request, "c")
    items, next_id = await history.conflicts_page(request.app[db_key], limit, before)
    return json_response({"items": items, "next_cursor": encode_cursor("c", next_id)})
