"""Meetings v3: create (with associations to contacts), read, update, archive."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import validation
from mock_crm.hubspot.properties import asked_properties, check_properties, render
from mock_crm.hubspot.service import API, archive_object, read_body, update_object

MEETING_TO_CONTACT = 200  # HUBSPOT_DEFINED association type ids, as HubSpot's association docs list them
CONTACT_TO_MEETING = 199


def _contact_ids(body: dict[str, Any]) -> list[str]:
    """The contact ids of a create's `associations` (only meeting-to-contact, type 200, is served)."""
    found = body.get("associations", [])
    if not isinstance(found, list):
        raise validation("associations must be a list.")
    ids = []
    for item in found:
        to = item.get("to") if isinstance(item, dict) else None
        types = item.get("types") if isinstance(item, dict) else None
        if not isinstance(to, dict) or not isinstance(to.get("id"), str | int) or not isinstance(types, list):
            raise validation("Each association needs to.id and types.")
        for spec in types:
            if (
                not isinstance(spec, dict)
                or spec.get("associationCategory") != "HUBSPOT_DEFINED"
                or spec.get("associationTypeId") != MEETING_TO_CONTACT
            ):
                raise validation(f"Only HUBSPOT_DEFINED type {MEETING_TO_CONTACT} (meeting to contact) is served.")
        ids.append(str(to["id"]))
    return ids


def _with_associations(request: web.Request, record: Any) -> dict[str, Any]:
    """Render a meeting; with ?associations=contacts add the associated contacts as HubSpot does."""
    extra = {}
    if "contacts" in ",".join(request.query.getall("associations", [])):
        ids = sorted(record.associations, key=int)
        extra["associations"] = {"contacts": {"results": [{"id": i, "type": "meeting_event_to_contact"} for i in ids]}}
    return render(record, asked_properties(request.query), **extra)


async def post_meeting(request: web.Request) -> web.Response:
    """POST /crm/v3/objects/meetings: hs_timestamp is required; associations must name live contacts."""
    body = await read_body(request)
    props = check_properties("meetings", body, required=("hs_timestamp",))
    contact_ids = _contact_ids(body)
    store = request.app[keys.store]
    missing = [i for i in contact_ids if i not in store.contacts]
    if missing:
        raise validation(f"The associated contacts {missing[:10]} do not exist.")
    record = store.create("meetings", props)
    for contact_id in contact_ids:
        store.associate(record.id, contact_id)
    return web.json_response(render(record, list(props)), status=201)


async def get_meeting(request: web.Request) -> web.Response:
    """GET /crm/v3/objects/meetings/{meeting_id}?properties=&associations=contacts."""
    record = request.app[keys.store].get("meetings", request.match_info["meeting_id"])
    return web.json_response(_with_associations(request, record))


async def patch_meeting(request: web.Request) -> web.Response:
    """PATCH /crm/v3/objects/meetings/{meeting_id}: change the given properties."""
    meeting_id = request.match_info["meeting_id"]
    request.app[keys.store].get("meetings", meeting_id)
    props = check_properties("meetings", await read_body(request))
    record = update_object(request.app, "meetings", meeting_id, props, API)
    return web.json_response(render(record, list(props) or None))


async def delete_meeting(request: web.Request) -> web.Response:
    """DELETE /crm/v3/objects/meetings/{meeting_id}: archive; 204 whether or not it existed."""
    archive_object(request.app, "meetings", request.match_info["meeting_id"], API)
    return web.Response(status=204)
