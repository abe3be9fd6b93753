"""Pull from the CRM on demand: one user now; a sweep, a full reconcile or an import in the background."""

from __future__ import annotations

from aiohttp import web

from ..crm.errors import CrmError
from ..errors import UpstreamRejected, UpstreamUnavailable, ValidationFailed
from ..keys import engine_key, scans_key, sweeper_key
from ..render import json_response
from ..sync.reconcile import reconcile_user
from ..sync.scans import FULL, IMPORT
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
    """Start a sweep of every CRM record changed since the last checkpoint, or (?full=true) a full reconcile:
    every CRM record read, and every linked user the CRM no longer has handled as deleted there."""
    full = request.query.get("full", "false").lower()
    if full not in ("true", "false"):
        raise ValidationFailed({"full": "must be true or false"})
    if full == "true":
        scans = request.app[scans_key]
        started = await scans.start(FULL)
        body = {"status": "started" if started else "already_running", "scan": await scans.status(FULL)}
        return json_response(body, status=202)
    started = request.app[sweeper_key].start_now()
    return json_response({"status": "started" if started else "already_running"}, status=202)


async def reconcile_status(request: web.Request) -> web.Response:
    """Where the last full reconcile stands (its counts, when it started and finished)."""
    return json_response(await request.app[scans_key].status(FULL))


async def start_import(request: web.Request) -> web.Response:
    """Pull every CRM record into the local store (backfill), resuming a stopped import where it was."""
    scans = request.app[scans_key]
    started = await scans.start(IMPORT)
    return json_response({"status": "started" if started else "already_running", "scan": await scans.status(IMPORT)},
                         status=202)  # fmt: skip


async def import_status(request: web.Request) -> web.Response:
    """Where the import stands."""
    return json_response(await request.app[scans_key].status(IMPORT))
