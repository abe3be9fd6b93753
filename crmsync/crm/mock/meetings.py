"""The mock CRM's meeting API, on top of the shared transport."""

from __future__ import annotations

from typing import Any

from ..attempts import Attempt
from ..errors import CrmNotFound, CrmUnavailable
from ..transport import Transport
from ..types import CrmMeeting
from .records import expect


async def create_meeting(crm: Transport, fields: dict[str, Any], key: str, tries: list[Attempt]) -> CrmMeeting:
    """Create a meeting; the Idempotency-Key makes a retry after a lost reply safe."""
    status, body = await crm.request("POST", "/crm/meetings", tries, "meeting_create", json=fields,
                                     headers={"Idempotency-Key": key})  # fmt: skip
    return _meeting(status, body, 201)


async def update_meeting(crm: Transport, meeting_id: str, fields: dict[str, Any], tries: list[Attempt]) -> CrmMeeting:
    """Set the meeting's fields to these absolute values."""
    status, body = await crm.request("PATCH", f"/crm/meetings/{meeting_id}", tries, "meeting_update", json=fields)
    if status == 404:
        raise CrmNotFound(meeting_id)
    return _meeting(status, body, 200)


async def set_contacts(crm: Transport, meeting_id: str, crm_ids: list[str], tries: list[Attempt]) -> CrmMeeting:
    """Replace the contacts linked to the meeting (the same request twice gives the same result)."""
    status, body = await crm.request(
        "PUT", f"/crm/meetings/{meeting_id}/contacts", tries, "meeting_contacts", json={"crm_ids": crm_ids}
    )
    if status == 404:
        raise CrmNotFound(meeting_id)
    return _meeting(status, body, 200)


def _meeting(status: int, body: Any, wanted: int) -> CrmMeeting:
    meeting = expect(status, body, wanted, "meeting")
    if not isinstance(meeting.get("meeting_id"), str):
        raise CrmUnavailable("The CRM answered with a meeting that lacks meeting_id.", status)
    return CrmMeeting(meeting["meeting_id"])
