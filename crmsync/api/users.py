"""Contacts: /users CRUD, manual sync and history."""

from __future__ import annotations

import logging
import uuid

from aiohttp import web

from ..errors import NotFound
from ..events import user_event
from ..keys import creator_key, db_key, engine_key, events_key
from ..render import json_response
from ..request_log import note
from ..store import history, user_life, users
from ..store.users import User
from ..timeutil import now_iso
from ..validation import read_json_object, validate_contact
from .paging import encode_cursor, page_params

logger = logging.getLogger(__name__)

STATUSES = ("pending", "synced", "failed", "deleting")
MAX_QUERY = 200
ORDERS = ("oldest", "newest")


def user_id_from(request: web.Request) -> str:
    """The {user_id} path part as a canonical UUID; a malformed one is simply not found."""
    raw = request.match_info["user_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound("No user with this id.") from None


def _announce(request: web.Request, user: User) -> None:
    """Tell live dashboards about a user a request just changed."""
    if bus := request.app[events_key]:
        bus.publish(user_event(user))


async def _load(request: web.Request) -> User:
    user = await users.get(request.app[db_key], user_id_from(request))
    if user is None:
        raise NotFound("No user with this id.")
    return user


async def create_user(request: web.Request) -> web.Response:
    """Store a new contact and queue its first sync; durable before the 201."""
    fields = validate_contact(await read_json_object(request), partial=False)
    user, _ = await request.app[creator_key].create(fields)
    note(request, user_id=user.id)  # the hot path: the request's own line says which contact it made
    request.app[engine_key].wake()
    _announce(request, user)
    return json_response(user.public(), status=201, headers={"Location": f"/users/{user.id}"})


async def get_user(request: web.Request) -> web.Response:
    """One contact with its sync status."""
    return json_response((await _load(request)).public())


async def edit_user(request: web.Request) -> web.Response:
    """PUT replaces all three fields, PATCH some; either way the change is queued for the CRM."""
    user_id = user_id_from(request)
    fields = validate_contact(await read_json_object(request), partial=request.method == "PATCH")
    result = await users.update(request.app[db_key], user_id, fields)
    if result is None:
        raise NotFound("No user with this id.")
    user, job_id = result
    if job_id is not None:
        logger.info("user_updated", extra={"user_id": user_id, "fields": sorted(fields)})
        request.app[engine_key].wake()
        _announce(request, user)
    return json_response(user.public())


async def delete_user(request: web.Request) -> web.Response:
    """Delete a contact: 204 when it never reached the CRM, else 202 while its CRM record is deleted."""
    user_id = user_id_from(request)
    result, user = await user_life.delete(request.app[db_key], user_id, now_iso())
    if result == "missing":
        raise NotFound("No user with this id.")
    logger.info("user_delete_requested", extra={"user_id": user_id, "result": result})
    if user is None:
        if bus := request.app[events_key]:
            bus.publish({"type": "user_deleted", "user_id": user_id})
        return web.Response(status=204)
    request.app[engine_key].wake()
    _announce(request, user)
    return json_response(user.public(), status=202)


async def list_users(request: web.Request) -> web.Response:
    """A page of contacts in creation order or, with order=newest, newest first; by sync_status and a search (q)."""
    status = request.query.get("sync_status") or None
    query = request.query.get("q") or None
    order = request.query.get("order") or "oldest"
    errors = {"sync_status": f"must be one of {', '.join(STATUSES)}"} if status not in (None, *STATUSES) else {}
    if query is not None and (len(query) > MAX_QUERY or "\x00" in query):
        errors["q"] = f"must be at most {MAX_QUERY} characters, without NUL"
    if order not in ORDERS:
        errors["order"] = f"must be one of {', '.join(ORDERS)}"
    newest = order == "newest"
    # Each order has its own cursors: one from the other order would skip or repeat contacts.
    prefix = "un" if newest else "u"
    limit, after = page_params(request, prefix, errors)
    page, next_seq = await users.list_page(request.app[db_key], status, limit, after, query, newest=newest)
    return json_response({"items": [u.public() for u in page], "next_cursor": encode_cursor(prefix, next_seq)})


async def sync_user(request: web.Request) -> web.Response:
    """Queue the user for sync now: the manual retry for a failed one."""
    result = await users.requeue(request.app[db_key], user_id_from(request))
    if result is None:
        raise NotFound("No user with this id.")
    user, _ = result
    request.app[engine_key].wake()
    _announce(request, user)
    return json_response(user.public(), status=202)


async def sync_failed(request: web.Request) -> web.Response:
    """Queue every failed user for sync now."""
    job_ids = await users.requeue_failed(request.app[db_key])
    if job_ids:
        request.app[engine_key].wake()
    return json_response({"queued": len(job_ids)}, status=202)


async def user_history(request: web.Request) -> web.Response:
    """The user's sync attempts, newest first."""
    user = await _load(request)
    return json_response({"user_id": user.id, "items": await history.history(request.app[db_key], user.id)})
