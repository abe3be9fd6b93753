"""What every CRM adapter answers with: typed records and events, never one CRM's wire format."""

from __future__ import annotations

import attrs


@attrs.frozen
class CrmContact:
    """A contact as the CRM holds it, in our field names (values as the CRM spells them, not yet normalised).

    changed_at is the CRM's last-change stamp in our ISO format; version is what a conditional write is
    based on (None when the CRM has no such notion).
    """

    crm_id: str
    fields: dict[str, str]
    changed_at: str
    version: str | None = None


@attrs.frozen
class ContactPage:
    """One page of a listing: the contacts that could be read, the ids of those that could not, the next cursor.

    A malformed record (no valid stamp, say) is skipped, not fatal to the page; its crm_id, when it has one,
    still says the CRM holds it.
    """

    contacts: list[CrmContact]
    malformed: list[str | None] = attrs.Factory(list)
    next_cursor: str | None = None

    @property
    def seen(self) -> int:
        """How many records the page held, readable or not."""
        return len(self.contacts) + len(self.malformed)


@attrs.frozen
class BatchItem:
    """One item of a batch create: the CRM's status for it, and the contact when it was created (or, for a
    409, the id of the contact that already has the e-mail address, when the CRM says; or its reason)."""

    status: int
    contact: CrmContact | None = None
    existing_id: str | None = None
    reason: str = ""


@attrs.frozen
class CrmMeeting:
    """A meeting as the CRM holds it."""

    meeting_id: str


@attrs.frozen
class Capabilities:
    """What the engine may rely on from this CRM."""

    idempotency_keys: bool  # a create repeated with the same key answers the record the first one made
    conditional_writes: bool  # an update can be made conditional on the record's version (If-Match)


@attrs.frozen
class RateLimit:
    """The rate limit a CRM advertised on a reply, in requests per second."""

    per_second: float
    remaining: float | None = None
    reset_seconds: float | None = None  # until the window that `remaining` counts in starts again
    # The length of a rolling window the limit counts over (per_second * window requests in any such window),
    # which caps the burst the pacer may allow; None for a token bucket.
    window: float | None = None


@attrs.frozen
class Throttled:
    """What a 429 asks of us: daily (stop sending until the daily reset) or a rolling window (wait it out)."""

    daily: bool
    wait_seconds: float
    policy: str | None  # the CRM's name for the limit, e.g. HubSpot's DAILY or TEN_SECONDLY_ROLLING


@attrs.frozen
class WebhookEvent:
    """A verified, validated CRM change notification."""

    event_id: str
    crm_id: str
    fields: dict[str, str]
    timestamp: str
    source: str
    payload: str
    raw_fields: dict[str, str] = attrs.Factory(dict)  # the values as the CRM holds them, before we normalise
    kind: str = "contact.updated"
    # Set when the fields are a whole record read from the CRM at this moment (then they are the truth).
    read_since: str | None = None
