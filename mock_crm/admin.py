"""Admin routes: edit a user as a person in the CRM would, read counters, and change faults live."""

from __future__ import annotations

import logging

from aiohttp import web

from mock_crm import keys
from mock_crm.bodies import read_json
from mock_crm.users import create_user, edit_user, remove_user

logger = logging.getLogger(__name__)


async def edit_user_as_person(request: web.Request) -> web.Response:
    """POST /crm/_admin/users/{crm_id}/edit: like PATCH, but the webhook says source "crm"."""
    body = await read_json(request)
    return web.json_response(edit_user(request.app, request.match_info["crm_id"], body, "crm"))


async def create_user_as_person(request: web.Request) -> web.Response:
    """POST /crm/_admin/users: a person adds a contact in the CRM; the webhook says contact.created, source crm."""
    result = create_user(request.app, "person", None, await read_json(request), source="crm")
    return result.render()


async def delete_user_as_person(request: web.Request) -> web.Response:
    """DELETE /crm/_admin/users/{crm_id}: a person deletes a contact; the webhook says contact.deleted."""
    remove_user(request.app, request.match_info["crm_id"], "crm")
    return web.Response(status=204)


async def get_faults(request: web.Request) -> web.Response:
    """GET /crm/_admin/faults: the fault settings in force."""
    return web.json_response(request.app[keys.faults].to_json())


async def put_faults(request: web.Request) -> web.Response:
    """PUT /crm/_admin/faults: change any subset of the settings, effective at once."""
    settings = request.app[keys.faults]
    settings.apply(await read_json(request))
    logger.info("faults_changed", extra=settings.to_json())
    return web.json_response(settings.to_json())


async def get_stats(request: web.Request) -> web.Response:
    """GET /crm/_admin/stats: the counters, for scripts watching a running mock."""
    data = request.app[keys.stats].to_json()
    data["users"] = len(request.app[keys.store].users)
    data["meetings"] = len(request.app[keys.store].meetings)
    return web.json_response(data)


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: liveness, no auth."""
    return web.json_response({"status": "ok"})
