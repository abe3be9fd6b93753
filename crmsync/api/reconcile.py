"""Pull from the CRM on demand: one user now, or a full sweep in the background."""

from __future__ import annotations

from aiohttp import web

from ..crm.errors import CrmError
from ..errors import UpstreamRejected, UpstreamUnavailable
from ..keys import engine_key, sweeper_key
from ..render import json_response
from ..sync.reconcile import reconcile_user
from .users import user_id_from


async def reconcile_one(request: web.Request) -> web.Response:
    """Fetch the user's CRM record now and merge it; answers what changed locally."""
    try:
        applied = await reconcile_user(request.app[engine_key], user_id_from(request))
    except CrmError as exc:
        raise (UpstreamUnavailable if exc.transient else UpstreamRejected)(exc.message) from None
    merged = applied.merged
    return json_response(
        {
            "changed_fields": merged.changed if merged else {},
            "conflicts": [c.field for c in merged.conflicts] if merged else [],
            "user": applied.user.public(),
        }
    )


async def reconcile_all(request: web.Request) -> web.Response:
    """Start a sweep of every CRM record changed since the last checkpoint."""
    started = request.app[sweeper_key].start_now()
    return json_response({"status": "started" if started else "already_running"}, status=202)
