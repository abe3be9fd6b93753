"""HubSpot's CRM v3: contacts upserted by e-mail, searched by lastmodifieddate, meetings and their associations.

Built to HubSpot's published OpenAPI documents and proved against the fake in mock_crm/hubspot/: nothing here
has talked to HubSpot itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ...signatures import SignatureError
from ...timeutil import isoformat, parse_iso
from ..attempts import Attempt
from ..errors import CrmEmailTaken, CrmNotFound, CrmStale, CrmUnavailable
from ..pacer import Pacer
from ..transport import Transport
from ..types import BatchItem, Capabilities, ContactPage, CrmContact, CrmMeeting, RateLimit, WebhookEvent
from . import meetings
from .records import CONTACT_PROPERTIES, contact, existing_id, expect, page, properties_of, to_contact

CONTACTS = "/crm/v3/objects/contacts"
SEARCH_RATE = 4.0  # requests/s: HubSpot's search endpoints allow about 5 per second per account, apart
SEARCH_PAGE = 200  # the most a search page holds
SEARCH_CAP = 10_000  # the most results one search can page through; a new window starts before it


class HubSpotAdapter:
    """The CrmAdapter for HubSpot.

    HubSpot has no idempotency keys: a create is an upsert by e-mail, so a create repeated after a lost
    reply finds the contact the first one made. It has no If-Match either: a conditional update is emulated by
    reading the contact's lastmodifieddate and writing only when it is still the version our snapshot was
    based on (CrmStale otherwise, and the engine merges the CRM's record first). What is left is the window
    of one round trip between that read and the PATCH, in which a person's edit of the same property can
    still be overwritten; the webhook for that edit then arrives and is merged like any other.
    """

    name = "hubspot"
    capabilities = Capabilities(idempotency_keys=False, conditional_writes=True)

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._search_pacer = Pacer(lambda _: RateLimit(SEARCH_RATE), headroom=1.0)
        self._search_pacer.observe({})

    async def create_contact(self, fields: dict[str, str], idempotency_key: str, tries: list[Attempt]) -> CrmContact:
        """Upsert one contact by e-mail (the key is not sent: HubSpot has none)."""
        (item,) = await self.create_contacts([(fields, idempotency_key)], tries)
        if item.contact is None:
            raise CrmUnavailable("HubSpot answered the create without the contact.", item.status)
        return item.contact

    async def create_contacts(self, items: list[tuple[dict[str, str], str]], tries: list[Attempt]) -> list[BatchItem]:
        """Upsert up to 100 contacts by e-mail in one request; one BatchItem per item, in order.

        HubSpot answers the results in no particular order, so they are matched back by e-mail; an input it
        refused (a 207's errors name it by its id, the e-mail) is a BatchItem with status 400 and no contact.
        """
        inputs = [
            {"idProperty": "email", "id": fields["email"], "properties": properties_of(fields)} for fields, _ in items
        ]
        status, body = await self.transport.request(
            "POST", f"{CONTACTS}/batch/upsert", tries, "batch_create", json={"inputs": inputs}
        )
        answer = expect(status, body, (200, 201, 207), "batch upsert")
        by_email: dict[str, BatchItem] = {}
        for result in answer.get("results") if isinstance(answer.get("results"), list) else []:
            try:
                created = to_contact(result)
            except ValueError:
                continue
            email = created.fields.get("email", "").lower()
            by_email[email] = BatchItem(201 if result.get("new", True) else 200, created)
        refused = {
            str(ident).lower()
            for error in answer.get("errors", []) if isinstance(answer.get("errors"), list)
            if isinstance(error, dict) and isinstance(error.get("context"), dict)
            for ident in error["context"].get("ids", []) or []
        }  # fmt: skip
        results = []
        for fields, _ in items:
            email = fields["email"].lower()
            if email in by_email:
                results.append(by_email[email])
            elif email in refused:
                results.append(BatchItem(400))
            else:
                results.append(BatchItem(0))  # unreadable or missing: the single path tries again
        return results

    async def update_contact(
        self, crm_id: str, fields: dict[str, str], tries: list[Attempt], version: str | None = None
    ) -> CrmContact:
        """PATCH the changed properties; with a version, only while lastmodifieddate is still that version."""
        if version is not None:
            current = await self.get_contact(crm_id, tries)
            if current.version != version:
                raise CrmStale(crm_id)
        status, body = await self.transport.request(
            "PATCH", f"{CONTACTS}/{crm_id}", tries, "update", json={"properties": properties_of(fields)}
        )
        if status == 404:
            raise CrmNotFound(crm_id)
        if status == 409 and (holder := existing_id(body)) is not None:
            raise CrmEmailTaken(holder)
        return contact(status, body, (200,))

    async def delete_contact(self, crm_id: str, tries: list[Attempt]) -> None:
        """Archive the contact (HubSpot answers 204 whether or not it existed)."""
        status, body = await self.transport.request("DELETE", f"{CONTACTS}/{crm_id}", tries, "delete")
        if status == 404:
            raise CrmNotFound(crm_id)
        if status != 204:
            expect(status, body, (204,), "delete")

    async def get_contact(self, crm_id: str, tries: list[Attempt] | None = None) -> CrmContact:
        """Read the contact's name, e-mail, phone and lastmodifieddate."""
        status, body = await self.transport.request(
            "GET", f"{CONTACTS}/{crm_id}", tries, "read", params={"properties": ",".join(CONTACT_PROPERTIES)}
        )
        if status == 404:
            raise CrmNotFound(crm_id)
        return contact(status, body, (200,))

    async def get_contacts(self, crm_ids: list[str]) -> dict[str, CrmContact]:
        """Read up to 100 contacts in one request (batch/read); the ones HubSpot has, by id."""
        payload = {"properties": list(CONTACT_PROPERTIES), "inputs": [{"id": crm_id} for crm_id in crm_ids]}
        status, body = await self.transport.request("POST", f"{CONTACTS}/batch/read", None, "read", json=payload)
        answer = expect(status, body, (200, 207), "batch read")
        found: dict[str, CrmContact] = {}
        for result in answer.get("results") if isinstance(answer.get("results"), list) else []:
            try:
                record = to_contact(result)
            except ValueError:
                continue
            found[record.crm_id] = record
        return found

    async def list_contacts(self, changed_since: str | None, cursor: str | None, limit: int = 100) -> ContactPage:
        """One search page of contacts by lastmodifieddate ascending, from changed_since (all when None).

        The cursor is "<window start>|<after>": search pages stop at 10,000 results, so before that a new
        window starts at the last stamp seen (a few records at that stamp are read twice; merging is idempotent).
        """
        start, after = _cursor(cursor, changed_since)
        size = SEARCH_PAGE  # HubSpot's most, whatever the caller's default: search has its own tight limit
        query: dict[str, Any] = {
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(CONTACT_PROPERTIES),
            "limit": size,
            "after": str(after),
        }
        if start:
            query["filterGroups"] = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                                   "value": _epoch_ms(start)}]}]  # fmt: skip
        await self._search_pacer.wait()
        status, body = await self.transport.request("POST", f"{CONTACTS}/search", None, "list", json=query)
        answer = expect(status, body, (200,), "search")
        found, last = page(answer.get("results"))
        paging = answer.get("paging")
        following = paging.get("next", {}).get("after") if isinstance(paging, dict) else None
        following = following if isinstance(following, str) and following.isdigit() else None
        if following is None:
            return found
        if int(following) + size > SEARCH_CAP and last is not None:
            # The cap is near: a new window from the last stamp seen (never the same one twice: that would loop).
            next_start = last if last != start else _just_after(last)
            return ContactPage(found.contacts, found.malformed, f"{next_start}|0")
        return ContactPage(found.contacts, found.malformed, f"{start}|{following}")

    async def count_contacts(self) -> int | None:
        """HubSpot's total for a search with no filter."""
        await self._search_pacer.wait()
        status, body = await self.transport.request(
            "POST", f"{CONTACTS}/search", None, "list", json={"limit": 1, "properties": ["hs_object_id"]}
        )
        total = expect(status, body, (200,), "search").get("total")
        return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None

    async def create_meeting(self, fields: dict[str, Any], key: str, tries: list[Attempt]) -> CrmMeeting:
        """Create the meeting, unless a search finds the one an earlier try with this key made."""
        await self._search_pacer.wait()
        return await meetings.create_meeting(self.transport, fields, key, tries)

    async def update_meeting(self, meeting_id: str, fields: dict[str, Any], tries: list[Attempt]) -> CrmMeeting:
        """Set the meeting's title and times."""
        return await meetings.update_meeting(self.transport, meeting_id, fields, tries)

    async def set_meeting_contacts(self, meeting_id: str, crm_ids: list[str], tries: list[Attempt]) -> CrmMeeting:
        """Make the meeting's associated contacts exactly these."""
        return await meetings.set_contacts(self.transport, meeting_id, crm_ids, tries)

    def verify_webhook(self, headers: Mapping[str, str], raw: bytes) -> str:
        """HubSpot's deliveries come to /webhook/hubspot (signed over the URL too), never to /webhook."""
        raise SignatureError("HubSpot webhooks are received at /webhook/hubspot")

    def parse_webhook(self, event_id: str, raw: bytes) -> WebhookEvent | None:
        """Not used: see verify_webhook."""
        return None

    def webhook_crm_id(self, raw: bytes) -> str:
        """Not used: see verify_webhook."""
        return ""


def _cursor(cursor: str | None, changed_since: str | None) -> tuple[str, int]:
    """(window start, offset) from a cursor of ours, or the first page's."""
    if cursor:
        start, _, after = cursor.rpartition("|")
        if after.isdigit():
            return start, int(after)
    return changed_since or "", 0


def _just_after(stamp: str) -> str:
    """The next millisecond after a stamp (HubSpot keeps milliseconds)."""
    return isoformat(parse_iso(stamp) + timedelta(milliseconds=1))


def _epoch_ms(stamp: str) -> str:
    """A stamp of ours as epoch milliseconds, rounded down (a GTE filter then misses nothing)."""
    return str(int(parse_iso(stamp).timestamp() * 1000))
