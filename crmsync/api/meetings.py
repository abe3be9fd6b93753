"""Meetings: CRUD for the owner only, "Sync to CRM", and the seed's two status endpoints."""

from __future__ import annotations

import logging
import uuid

from aiohttp import web

from ..auth import account_id_key
from ..errors import NotFound, ValidationFailed
from ..keys import engine_key, events_key, meetings_key
from ..meeting_validation import validate_meeting
from ..render import json_response
from ..store import meeting_runs
from ..store.meetings import Meeting
from ..sync.meetings import announce
from ..validation import read_json_object
from .paging import encode_cursor, page_params

logger = logging.getLogger(__name__)


async def _own(request: web.Request) -> Meeting:
    """The meeting in the path if the caller owns it; any other meeting is simply not found."""
    meeting_id = request.match_info["meeting_id"]
    try:
        meeting = await request.app[meetings_key].get(str(uuid.UUID(meeting_id)))
    except ValueError:
        meeting = None
    if meeting is None or meeting.account_id != request[account_id_key]:
        raise NotFound("No meeting with this id.")
    return meeting


async def _valid_body(request: web.Request, partial: bool, current: Meeting | None = None) -> dict:
    known = {"starts_at": current.starts_at, "ends_at": current.ends_at} if current else None
    fields = validate_meeting(await read_json_object(request), partial, known)
    if unknown := await request.app[meetings_key].missing_users(fields.get("attendee_ids", [])):
        raise ValidationFailed({"attendee_ids": f"no such user: {', '.join(unknown[:5])}"})
    return fields


async def create_meeting(request: web.Request) -> web.Response:
    """Create a meeting owned by the caller."""
    fields = await _valid_body(request, partial=False)
    meeting = await request.app[meetings_key].create(request[account_id_key], fields)
    await announce(request.app[engine_key], meeting.id)
    return json_response(meeting.public(), status=201, headers={"Location": f"/meetings/{meeting.id}"})


async def list_meetings(request: web.Request) -> web.Response:
    """The caller's meetings, oldest first, a page at a time."""
    limit, after = page_params(request, "m")
    page, next_seq = await request.app[meetings_key].list_for(request[account_id_key], limit, after)
    return json_response({"items": [m.public() for m in page], "next_cursor": encode_cursor("m", next_seq)})


async def get_meeting(request: web.Request) -> web.Response:
    """One meeting with where its sync stands."""
    return json_response((await _own(request)).public())


async def edit_meeting(request: web.Request) -> web.Response:
    """PUT sets title and times (and attendees when given), PATCH some of them."""
    meeting = await _own(request)
    fields = await _valid_body(request, partial=request.method == "PATCH", current=meeting)
    meeting = await request.app[meetings_key].update(meeting, fields)
    await announce(request.app[engine_key], meeting.id)
    return json_response(meeting.public())


async def delete_meeting(request: web.Request) -> web.Response:
    """Delete one of the caller's meetings (here only); its queued sync stages are dropped."""
    meeting = await _own(request)
    if not await request.app[meetings_key].delete(meeting.id):
        raise NotFound("No meeting with this id.")
    logger.info("meeting_deleted", extra={"meeting_id": meeting.id, "account_id": meeting.account_id})
    if bus := request.app[events_key]:
        bus.publish({"type": "meeting_deleted", "meeting_id": meeting.id}, account_id=meeting.account_id)
    return web.Response(status=204)


async def sync_meeting(request: web.Request) -> web.Response:
    """Start the three-stage sync; a sync already running is not started twice."""
    meeting = await _own(request)
    meeting, job_id = await meeting_runs.start(request.app[meetings_key], meeting.id)
    if job_id is not None:
        request.app[engine_key].wake()
        await announce(request.app[engine_key], meeting.id)
    return json_response(meeting.public(), status=202)


async def sync_status(request: web.Request) -> web.Response:
    """The seed's in_progress_sync_status: 1, 2 or 3 while a stage runs, null when idle."""
    meeting = await _own(request)
    return json_response({"in_progress_sync_status": meeting.in_progress_sync_status, "stage": meeting.stage})


async def last_sync_success(request: web.Request) -> web.Response:
    """How the last sync ended, and when, and why if it failed."""
    meeting = await _own(request)
    return json_response(
        {"last_sync_success": meeting.last_sync_success, "last_sync_at": meeting.last_sync_at,
         "last_sync_error": meeting.last_sync_error}
    )  # fmt: skip
