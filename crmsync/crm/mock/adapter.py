"""The mock CRM (mock_crm/): /crm/users and /crm/meetings, idempotency keys, If-Match, Standard Webhooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..attempts import Attempt
from ..errors import CrmDuplicate, CrmEmailTaken, CrmNotFound, CrmStale, CrmUnavailable
from ..transport import Transport
from ..types import BatchItem, Capabilities, ContactPage, CrmContact, CrmMeeting, WebhookEvent
from . import meetings, webhooks
from .records import batch_item, contact, expect, page


class MockAdapter:
    """The CrmAdapter for the mock CRM; its wire format stays in this package."""

    name = "mock"
    capabilities = Capabilities(idempotency_keys=True, conditional_writes=True)

    def __init__(self, transport: Transport, webhook_keys: Sequence[bytes]) -> None:
        self.transport = transport
        self._webhook_keys = webhook_keys

    async def create_contact(self, fields: dict[str, str], idempotency_key: str, tries: list[Attempt]) -> CrmContact:
        """Create a contact; a 409 becomes CrmDuplicate carrying the existing crm_id."""
        status, body = await self.transport.request(
            "POST", "/crm/users", tries, "create", json=fields, headers={"Idempotency-Key": idempotency_key}
        )
        if status == 409 and isinstance(body, dict) and isinstance(body.get("crm_id"), str):
            raise CrmDuplicate(body["crm_id"])
        return contact(status, body, 201)

    async def create_contacts(self, items: list[tuple[dict[str, str], str]], tries: list[Attempt]) -> list[BatchItem]:
        """Create up to 100 contacts in one request; one BatchItem per item, in order."""
        payload = {"items": [{**fields, "idempotency_key": key} for fields, key in items]}
        status, body = await self.transport.request("POST", "/crm/users/batch", tries, "batch_create", json=payload)
        results = expect(status, body, 200, "batch").get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise CrmUnavailable("The CRM answered the batch with a malformed result list.", status)
        return [batch_item(result) for result in results]

    async def update_contact(
        self, crm_id: str, fields: dict[str, str], tries: list[Attempt], version: str | None = None
    ) -> CrmContact:
        """Change some fields of a contact; with a version, only if the record is still at that version."""
        headers = {"If-Match": f'"{version}"'} if version else {}
        status, body = await self.transport.request(
            "PATCH", f"/crm/users/{crm_id}", tries, "update", json=fields, headers=headers
        )
        if status == 404:
            raise CrmNotFound(crm_id)
        if status == 412:
            raise CrmStale(crm_id)
        if status == 409 and isinstance(body, dict) and isinstance(body.get("crm_id"), str):
            raise CrmEmailTaken(body["crm_id"])
        return contact(status, body, 200)

    async def delete_contact(self, crm_id: str, tries: list[Attempt]) -> None:
        """Delete a contact; CrmNotFound when the CRM has no such record."""
        status, body = await self.transport.request("DELETE", f"/crm/users/{crm_id}", tries, "delete")
        if status == 404:
            raise CrmNotFound(crm_id)
        if status != 204:
            expect(status, body, 204, "delete")

    async def get_contact(self, crm_id: str, tries: list[Attempt] | None = None) -> CrmContact:
        """Read a contact."""
        status, body = await self.transport.request("GET", f"/crm/users/{crm_id}", tries, "read")
        if status == 404:
            raise CrmNotFound(crm_id)
        return contact(status, body, 200)

    async def list_contacts(self, changed_since: str | None, cursor: str | None, limit: int = 100) -> ContactPage:
        """One page of contacts changed after changed_since, oldest change first, and the next cursor."""
        params = {"limit": str(limit)}
        if changed_since:
            params["updated_since"] = changed_since
        if cursor:
            params["cursor"] = cursor
        status, body = await self.transport.request("GET", "/crm/users", None, "list", params=params)
        listing = expect(status, body, 200, "listing")
        return page(listing.get("items"), listing.get("next_cursor"))

    async def count_contacts(self) -> int | None:
        """How many contacts the CRM holds, when its listing says (a `total`); None when it does not."""
        status, body = await self.transport.request("GET", "/crm/users", None, "list", params={"limit": "1"})
        total = expect(status, body, 200, "listing").get("total")
        return total if isinstance(total, int) and total >= 0 else None

    async def create_meeting(self, fields: dict[str, Any], key: str, tries: list[Attempt]) -> CrmMeeting:
        """Create a meeting; the Idempotency-Key makes a retry after a lost reply safe."""
        return await meetings.create_meeting(self.transport, fields, key, tries)

    async def update_meeting(self, meeting_id: str, fields: dict[str, Any], tries: list[Attempt]) -> CrmMeeting:
        """Set the meeting's fields to these absolute values."""
        return await meetings.update_meeting(self.transport, meeting_id, fields, tries)

    async def set_meeting_contacts(self, meeting_id: str, crm_ids: list[str], tries: list[Attempt]) -> CrmMeeting:
        """Replace the contacts linked to the meeting."""
        return await meetings.set_contacts(self.transport, meeting_id, crm_ids, tries)

    def verify_webhook(self, headers: Mapping[str, str], raw: bytes) -> str:
        """Check the Standard Webhooks signature with any of our keys; return the webhook-id."""
        return webhooks.verify_delivery(self._webhook_keys, headers, raw)

    def parse_webhook(self, event_id: str, raw: bytes) -> WebhookEvent | None:
        """The mock's JSON body as a typed event."""
        return webhooks.parse_event(event_id, raw)

    def webhook_crm_id(self, raw: bytes) -> str:
        """The crm_id of an invalid delivery's body, when it has one."""
        return webhooks.crm_id_of(raw)
