"""HubSpot's meetings object (/crm/v3/objects/meetings) and its v4 associations to contacts.

A meeting's title is hs_meeting_title, its start hs_timestamp (the time HubSpot files the activity under) and
hs_meeting_start_time, its end hs_meeting_end_time. HubSpot has no idempotency keys, so the create carries our
key in hs_internal_meeting_notes ("crmsync:<key>") and a search for it comes first: a create repeated after a
lost reply finds the meeting the first one made. The create itself is sent once per run (no request-level
retry), since a retried POST could make a second meeting; the job's own retry searches again.
"""

from __future__ import annotations

from typing import Any

from ..attempts import Attempt
from ..errors import CrmNotFound, CrmUnavailable
from ..transport import Transport
from ..types import CrmMeeting
from .records import expect

MEETINGS = "/crm/v3/objects/meetings"
MARKER = "crmsync:"


def meeting_properties(fields: dict[str, Any]) -> dict[str, str]:
    """Our meeting's title, starts_at and ends_at as HubSpot properties (ISO 8601 date-times)."""
    return {
        "hs_meeting_title": fields["title"],
        "hs_timestamp": fields["starts_at"],
        "hs_meeting_start_time": fields["starts_at"],
        "hs_meeting_end_time": fields["ends_at"],
    }


async def create_meeting(crm: Transport, fields: dict[str, Any], key: str, tries: list[Attempt]) -> CrmMeeting:
    """The meeting an earlier try with this key made, else a new one (sent once: see the module)."""
    marker = MARKER + key
    wanted = {"propertyName": "hs_internal_meeting_notes", "operator": "EQ", "value": marker}
    search = {"filterGroups": [{"filters": [wanted]}], "properties": ["hs_object_id"], "limit": 1}
    status, body = await crm.request("POST", f"{MEETINGS}/search", tries, "meeting_lookup", json=search)
    results = expect(status, body, (200,), "meeting search").get("results")
    if isinstance(results, list) and results:
        return _meeting(200, results[0], (200,))
    props = {**meeting_properties(fields), "hs_internal_meeting_notes": marker}
    status, body = await crm.request("POST", MEETINGS, tries, "meeting_create", retry=False, json={"properties": props})
    return _meeting(status, body, (201,))


async def update_meeting(crm: Transport, meeting_id: str, fields: dict[str, Any], tries: list[Attempt]) -> CrmMeeting:
    """Set the meeting's title and times to these values."""
    status, body = await crm.request(
        "PATCH", f"{MEETINGS}/{meeting_id}", tries, "meeting_update", json={"properties": meeting_properties(fields)}
    )
    if status == 404:
        raise CrmNotFound(meeting_id)
    return _meeting(status, body, (200,))


async def set_contacts(crm: Transport, meeting_id: str, crm_ids: list[str], tries: list[Attempt]) -> CrmMeeting:
    """Associate exactly these contacts: read the current ones, add what is missing, remove the rest."""
    base = f"/crm/v4/objects/meetings/{meeting_id}/associations"
    status, body = await crm.request("GET", f"{base}/contacts", tries, "meeting_contacts")
    if status == 404:
        raise CrmNotFound(meeting_id)
    results = expect(status, body, (200,), "association list").get("results")
    current = {
        str(item["toObjectId"]) for item in results if isinstance(results, list) and isinstance(item, dict)
        and isinstance(item.get("toObjectId"), int | str)
    }  # fmt: skip
    wanted = set(crm_ids)
    for crm_id in sorted(wanted - current):
        status, body = await crm.request("PUT", f"{base}/default/contacts/{crm_id}", tries, "meeting_contacts")
        expect(status, body, (200, 201), "association")  # a 404 here names the contact, not the meeting
    for crm_id in sorted(current - wanted):
        status, body = await crm.request("DELETE", f"{base}/contacts/{crm_id}", tries, "meeting_contacts")
        if status != 204:
            expect(status, body, (204,), "association removal")
    return CrmMeeting(meeting_id)


def _meeting(status: int, body: Any, wanted: tuple[int, ...]) -> CrmMeeting:
    meeting = expect(status, body, wanted, "meeting")
    meeting_id = meeting.get("id")
    if isinstance(meeting_id, int) and not isinstance(meeting_id, bool):
        meeting_id = str(meeting_id)
    if not isinstance(meeting_id, str) or not meeting_id:
        raise CrmUnavailable("HubSpot answered with a meeting that lacks its id.", status)
    return CrmMeeting(meeting_id)
