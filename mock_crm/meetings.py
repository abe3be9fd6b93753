"""Meeting handlers: create (idempotent), read, partial update, and set associated contacts."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from mock_crm import keys
from mock_crm.bodies import read_json
from mock_crm.errors import InvalidData
from mock_crm.idempotency import fingerprint, header_key
from mock_crm.users import Result
from mock_crm.validation import MEETING_FIELDS, require_object, validate

logger = logging.getLogger(__name__)

MAX_CONTACTS = 1000


async def post_meeting(request: web.Request) -> web.Response:
    """POST /crm/meetings; same Idempotency-Key rules as users. No await after the body is read."""
    key = header_key(request)
    body = await read_json(request)
    app, client = request.app, request[keys.client]
    cache, print_ = app[keys.idempotency], fingerprint(body)
    scope = (client, "meetings", key) if key is not None else None
    if scope is not None:
        stored = cache.lookup(scope, print_)
        if stored is not None:
            return Result(stored.status, stored.body, replayed=True).render()
    meeting = app[keys.store].create_meeting(validate(body, MEETING_FIELDS, required=("title", "starts_at")))
    data = meeting.to_json()
    if scope is not None:
        cache.store(scope, print_, 201, data)
    logger.info("meeting_created", extra={"meeting_id": meeting.meeting_id, "client_id": client})
    return web.json_response(data, status=201)


async def get_meeting(request: web.Request) -> web.Response:
    """GET /crm/meetings/{meeting_id}."""
    meeting = request.app[keys.store].get_meeting(request.match_info["meeting_id"])
    return web.json_response(meeting.to_json())


def _apply(app: web.Application, meeting_id: str, fields: dict[str, Any]) -> web.Response:
    """Update a meeting, emit a webhook for real changes, and render it."""
    store = app[keys.store]
    meeting = store.get_meeting(meeting_id)
    changed = store.update_meeting(meeting_id, fields)
    if changed:
        app[keys.webhooks].emit("meeting_id", meeting_id, changed, meeting.updated_at, "api")
        logger.info("meeting_updated", extra={"meeting_id": meeting_id, "fields": sorted(changed)})
    return web.json_response(meeting.to_json())


async def patch_meeting(request: web.Request) -> web.Response:
    """PATCH /crm/meetings/{meeting_id} with any of title, starts_at, ends_at."""
    body = await read_json(request)
    request.app[keys.store].get_meeting(request.match_info["meeting_id"])
    return _apply(request.app, request.match_info["meeting_id"], validate(body, MEETING_FIELDS, partial=True))


def _crm_ids(body: Any) -> list[str]:
    """Return the de-duplicated crm_ids of a contacts body, or raise InvalidData."""
    data = require_object(body)
    extra = [key[:64] for key in data if key != "crm_ids"][:20]
    if extra:
        raise InvalidData("Only 'crm_ids' is allowed.", dict.fromkeys(extra, "unknown field"))
    ids = data.get("crm_ids")
    if not isinstance(ids, list) or len(ids) > MAX_CONTACTS or not all(isinstance(i, str) for i in ids):
        reason = f"must be a list of at most {MAX_CONTACTS} strings"
        raise InvalidData("crm_ids must be a list of ids.", {"crm_ids": reason})
    return list(dict.fromkeys(ids))


async def put_contacts(request: web.Request) -> web.Response:
    """PUT /crm/meetings/{meeting_id}/contacts: replace the associated contacts."""
    ids = _crm_ids(await read_json(request))
    return _apply(request.app, request.match_info["meeting_id"], {"contact_ids": ids})
