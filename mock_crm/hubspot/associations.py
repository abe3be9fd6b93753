"""Associations v4 between meetings and contacts: default PUT, list, DELETE."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import validation
from mock_crm.hubspot.meetings import CONTACT_TO_MEETING, MEETING_TO_CONTACT
from mock_crm.hubspot.store import hs_time

_TYPES = {("meetings", "contacts"): MEETING_TO_CONTACT, ("contacts", "meetings"): CONTACT_TO_MEETING}


def _pair(request: web.Request) -> tuple[str, str, str, str | None]:
    """(from type, from id, to type, to id) of the path; only meetings and contacts are served."""
    info = request.match_info
    pair = (info["from_type"], info["to_type"])
    if pair not in _TYPES:
        raise validation(f"Associations between {pair[0][:32]} and {pair[1][:32]} are not served by the fake.")
    return pair[0], info["from_id"], pair[1], info.get("to_id")


def _meeting_contact(from_type: str, from_id: str, to_id: str) -> tuple[str, str]:
    """(meeting id, contact id) whichever way round the path names them."""
    return (from_id, to_id) if from_type == "meetings" else (to_id, from_id)


async def put_default(request: web.Request) -> web.Response:
    """PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{id}: link both ways, 200 with both specs."""
    from_type, from_id, to_type, to_id = _pair(request)
    if to_id is None:  # the route always has it; this narrows the type
        raise validation("The path must name the object to associate.")
    request.app[keys.store].associate(*_meeting_contact(from_type, from_id, to_id))
    now = hs_time(datetime.now(UTC))

    def result(a: str, b: str, type_id: int) -> dict[str, object]:
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
        return {"from": {"id": a}, "to": {"id": b}, "associationSpec": spec}

    forward = result(from_id, to_id, _TYPES[(from_type, to_type)])
    results = [forward, result(to_id, from_id, _TYPES[(to_type, from_type)])]
    return web.json_response({"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})


async def list_associations(request: web.Request) -> web.Response:
    """GET /crm/v4/objects/{from}/{id}/associations/{to}: the associated ids with their type."""
    from_type, from_id, to_type, _ = _pair(request)
    record = request.app[keys.store].get(from_type, from_id)
    kind = {"category": "HUBSPOT_DEFINED", "typeId": _TYPES[(from_type, to_type)], "label": None}
    results = [{"toObjectId": int(i), "associationTypes": [kind]} for i in sorted(record.associations, key=int)]
    return web.json_response({"results": results})


async def delete_association(request: web.Request) -> web.Response:
    """DELETE /crm/v4/objects/{from}/{id}/associations/{to}/{id}: unlink, 204."""
    from_type, from_id, _, to_id = _pair(request)
    if to_id is None:  # the route always has it; this narrows the type
        raise validation("The path must name the object to associate.")
    request.app[keys.store].associate(*_meeting_contact(from_type, from_id, to_id), on=False)
    return web.Response(status=204)
