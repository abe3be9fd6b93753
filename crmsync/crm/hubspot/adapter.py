"""HubSpot's CRM v3: contacts upserted by e-mail, searched by lastmodifieddate, meetings and their associations.

Built to HubSpot's published OpenAPI documents and proved against the fake in mock_crm/hubspot/: nothing here
has talked to HubSpot itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...signatures import SignatureError
from ..attempts import Attempt
from ..errors import CrmDuplicate, CrmEmailTaken, CrmNotFound, CrmRejected, CrmStale, CrmUnavailable
from ..pacer import Pacer
from ..transport import Transport
from ..types import BatchItem, Capabilities, ContactPage, CrmContact, CrmMeeting, RateLimit, WebhookEvent
from . import listing, meetings
from .records import CONTACT_PROPERTIES, contact, existing_id, expect, page, properties_of, reason, to_contact

CONTACTS = "/crm/v3/objects/contacts"
SEARCH_RATE = 4.0  # requests/s: HubSpot's search endpoints allow about 5 per second per account, apart
SEARCH_PAGE = 200  # the most a search page holds


class HubSpotAdapter:
    """The CrmAdapter for HubSpot.

    HubSpot has no idempotency keys: a create looks its e-mail address up first (a contact HubSpot has is
    linked, never overwritten) and is then an upsert by e-mail, so that a create repeated after a lost reply
    finds the contact the first one made. It has no If-Match either: a conditional update is emulated by
    reading the contact's lastmodifieddate and writing only when it is still the version our snapshot was
    based on (CrmStale otherwise, and the engine merges the CRM's record first). What is left is the window
    of one round trip between that read and the PATCH, in which a person's edit of the same property can
    still be overwritten (HubSpot keeps it in the property's history).
    """

    name = "hubspot"
    capabilities = Capabilities(idempotency_keys=False, conditional_writes=True)

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._search_pacer = Pacer(lambda _: RateLimit(SEARCH_RATE), headroom=1.0)
        self._search_pacer.observe({})

    async def create_contact(self, fields: dict[str, str], idempotency_key: str, tries: list[Attempt]) -> CrmContact:
        """Create one contact (see create_contacts); a contact HubSpot already has with this e-mail address is
        CrmDuplicate, which the engine links (the CRM's values win), our own earlier create among them."""
        (item,) = await self.create_contacts([(fields, idempotency_key)], tries)
        if item.status == 409 and item.existing_id is not None:
            raise CrmDuplicate(item.existing_id)
        if item.contact is None:
            if item.status == 400:
                raise CrmRejected(f"HubSpot rejected the contact: {item.reason}", 400)
            raise CrmUnavailable("HubSpot answered the create without the contact.", item.status)
        return item.contact

    async def create_contacts(self, items: list[tuple[dict[str, str], str]], tries: list[Attempt]) -> list[BatchItem]:
        """Create up to 100 contacts; one BatchItem per item, in order (the key is not sent: HubSpot has none).

        The e-mail addresses are looked up first (batch/read by email): one HubSpot has already is a 409 item
        naming that contact, never overwritten. The others go as one batch/upsert by e-mail, so that the
        request repeated after a lost reply finds what it made instead of making it twice. HubSpot answers the
        results in no particular order, so they are matched back by e-mail; an input it refused (a 207's
        errors name it by its id, the e-mail) is a 400 item with HubSpot's reason.
        """
        existing = await self._by_email([fields["email"] for fields, _ in items], tries)
        new = [(fields, key) for fields, key in items if fields["email"].lower() not in existing]
        made = await self._upsert(new, tries) if new else {}
        results = []
        for fields, _ in items:
            email = fields["email"].lower()
            if (found := existing.get(email)) is not None and _as_sent(found, fields):
                # Exactly what this create sends: an earlier try of it whose reply was lost made it. It is this
                # create's answer (as a key's replay would be), so edits made since are pushed next, not lost.
                results.append(BatchItem(201, found))
            elif found is not None:
                results.append(BatchItem(409, existing_id=found.crm_id))
            else:
                results.append(made.get(email, BatchItem(0)))  # 0: unreadable or missing, the single path retries
        return results

    async def _by_email(self, emails: list[str], tries: list[Attempt]) -> dict[str, CrmContact]:
        """The contacts HubSpot has with these e-mail addresses, by address (lowercase)."""
        payload = {"idProperty": "email", "properties": list(CONTACT_PROPERTIES),
                   "inputs": [{"id": email} for email in emails]}  # fmt: skip
        status, body = await self.transport.request("POST", f"{CONTACTS}/batch/read", tries, "lookup", json=payload)
        found: dict[str, CrmContact] = {}
        for result in _results(expect(status, body, (200, 207), "lookup by email")):
            try:
                record = to_contact(result)
            except ValueError:
                continue
            if "email" in record.fields:
                found[record.fields["email"].lower()] = record
        return found

    async def _upsert(self, items: list[tuple[dict[str, str], str]], tries: list[Attempt]) -> dict[str, BatchItem]:
        """One batch/upsert by e-mail; its items by e-mail (lowercase)."""
        inputs = [
            {"idProperty": "email", "id": fields["email"], "properties": properties_of(fields)} for fields, _ in items
        ]
        status, body = await self.transport.request(
            "POST", f"{CONTACTS}/batch/upsert", tries, "batch_create", json={"inputs": inputs}
        )
        answer = expect(status, body, (200, 201, 207), "batch upsert")
        made: dict[str, BatchItem] = {}
        for result in _results(answer):
            try:
                created = to_contact(result)
            except ValueError:
                continue
            made[created.fields.get("email", "").lower()] = BatchItem(201, created)
        for error in answer.get("errors") if isinstance(answer.get("errors"), list) else []:
            context = error.get("context") if isinstance(error, dict) else None
            ids = context.get("ids") if isinstance(context, dict) else None
            for ident in ids if isinstance(ids, list) else []:
                made.setdefault(str(ident).lower(), BatchItem(400, reason=reason(error, 400)))
        return made

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

    async def list_contacts(
        self, changed_since: str | None, cursor: str | None, limit: int = SEARCH_PAGE
    ) -> ContactPage:
        """One search page of contacts changed at or after changed_since (all when None), oldest change first,
        paged by key (see listing.py); up to 200 a page."""
        position = listing.Position.parse(cursor, changed_since)
        answer = await self._search(listing.query(position, max(1, min(limit, SEARCH_PAGE))))
        found = page(answer.get("results"))
        paging = answer.get("paging")
        more = isinstance(paging, dict) and isinstance(paging.get("next"), dict)
        after = listing.following(position, found.contacts, more)
        return ContactPage(listing.fresh(position, found.contacts), found.malformed, str(after) if after else None)

    async def count_contacts(self) -> int | None:
        """HubSpot's total for a search with no filter."""
        total = (await self._search({"limit": 1, "properties": ["hs_object_id"]})).get("total")
        return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None

    async def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        """One contacts search, paced apart: search has its own limit, shared by the replicas like the other."""
        self._search_pacer.share = self.transport.pacer.share
        await self._search_pacer.wait()
        status, answer = await self.transport.request("POST", f"{CONTACTS}/search", None, "list", json=body)
        return expect(status, answer, (200,), "search")

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


def _results(answer: dict[str, Any]) -> list[Any]:
    """A batch answer's results (none when it has no list of them)."""
    results = answer.get("results")
    return results if isinstance(results, list) else []


def _as_sent(record: CrmContact, fields: dict[str, str]) -> bool:
    """Whether HubSpot holds exactly the contact these create fields make."""
    sent = {**fields, "email": fields["email"].lower(), "name": " ".join(fields["name"].split())}
    held = {**record.fields, "email": record.fields.get("email", "").lower()}
    return all(held.get(field) == sent.get(field) for field in ("name", "email", "phone"))
