"""The seam between the sync engine and one CRM: everything CRM-specific sits behind this interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .attempts import Attempt
from .transport import Transport
from .types import BatchItem, Capabilities, ContactPage, CrmContact, CrmMeeting, WebhookEvent


class CrmAdapter(Protocol):
    """One CRM's paths, bodies, record mapping, webhooks and capabilities, over the shared transport.

    Every call raises a CrmError subclass instead of returning a failure: CrmDuplicate (a create met an
    existing email), CrmNotFound, CrmStale (a conditional write lost), CrmEmailTaken, CrmRejected,
    CrmUnavailable.
    """

    name: str
    capabilities: Capabilities
    transport: Transport

    async def create_contact(self, fields: dict[str, str], idempotency_key: str, tries: list[Attempt]) -> CrmContact:
        """Create a contact (the key is sent only when capabilities.idempotency_keys)."""

    async def create_contacts(self, items: list[tuple[dict[str, str], str]], tries: list[Attempt]) -> list[BatchItem]:
        """Create up to 100 contacts in one request; one BatchItem per item, in order."""

    async def update_contact(
        self, crm_id: str, fields: dict[str, str], tries: list[Attempt], version: str | None = None
    ) -> CrmContact:
        """Change some fields; with a version (and capabilities.conditional_writes), only at that version."""

    async def delete_contact(self, crm_id: str, tries: list[Attempt]) -> None:
        """Delete a contact."""

    async def get_contact(self, crm_id: str, tries: list[Attempt] | None = None) -> CrmContact:
        """Read a contact."""

    async def list_contacts(self, changed_since: str | None, cursor: str | None, limit: int = 100) -> ContactPage:
        """One page of contacts changed after changed_since (all when None), oldest change first."""

    async def count_contacts(self) -> int | None:
        """How many contacts the CRM holds, when it says; None when it does not."""

    async def create_meeting(self, fields: dict[str, Any], key: str, tries: list[Attempt]) -> CrmMeeting:
        """Create a meeting (title, starts_at, ends_at)."""

    async def update_meeting(self, meeting_id: str, fields: dict[str, Any], tries: list[Attempt]) -> CrmMeeting:
        """Set a meeting's fields to these absolute values."""

    async def set_meeting_contacts(self, meeting_id: str, crm_ids: list[str], tries: list[Attempt]) -> CrmMeeting:
        """Make the meeting's associated contacts exactly these."""

    def verify_webhook(self, headers: Mapping[str, str], raw: bytes) -> str:
        """Check a delivery's signature on its raw bytes; return its event id or raise SignatureError."""

    def parse_webhook(self, event_id: str, raw: bytes) -> WebhookEvent | None:
        """The delivery as a typed event (None: about something not synced back); ValidationFailed when invalid."""

    def webhook_crm_id(self, raw: bytes) -> str:
        """The crm_id an invalid delivery names, as far as it can be read ("" when none), for its stored record."""
