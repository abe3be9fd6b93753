"""GET /status: what the dashboard's header and filters show, from this replica's real CRM exchanges."""

from __future__ import annotations

from aiohttp import web

from ..keys import crm_key, db_key
from ..render import json_response
from ..store import users
from .users import STATUSES


async def status(request: web.Request) -> web.Response:
    """The CRM connection as the last real exchange left it, and how many contacts are in each status."""
    health = request.app[crm_key].transport.health
    state = "ok" if health.ok else "failing" if health.consecutive_failures else "unknown"
    counts = dict.fromkeys(STATUSES, 0) | await users.count_by_status(request.app[db_key])
    return json_response({"crm": {"state": state, **health.to_json()}, "contacts": counts})
