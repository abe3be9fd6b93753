"""In-memory CRM objects (contacts, meetings) with numeric string ids, an e-mail index and associations."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import attrs

from mock_crm.clock import Clock
from mock_crm.hubspot.errors import conflict, not_found


def hs_time(moment: datetime) -> str:
    """Render a datetime as HubSpot does: ISO 8601 in UTC with milliseconds."""
    m = moment.astimezone(UTC)
    return m.strftime("%Y-%m-%dT%H:%M:%S.") + f"{m.microsecond // 1000:03d}Z"


@attrs.define
class HubObject:
    """One contact or meeting: its properties (all strings) and timestamps."""

    kind: str  # "contacts" or "meetings"
    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    associations: set[str] = attrs.Factory(set)  # ids of the associated objects of the other kind


_STAMPS = {"contacts": ("createdate", "lastmodifieddate"), "meetings": ("hs_createdate", "hs_lastmodifieddate")}


class HubStore:
    """Live contacts and meetings by id; archived objects are gone from reads."""

    def __init__(self) -> None:
        """Start empty; ids count up from HubSpot-looking numbers."""
        self.objects: dict[str, dict[str, HubObject]] = {"contacts": {}, "meetings": {}}
        self._emails: dict[str, str] = {}  # lower-cased e-mail -> contact id
        self._ids = itertools.count(1001)
        self._clock = Clock()

    @property
    def contacts(self) -> dict[str, HubObject]:
        """Live contacts by id."""
        return self.objects["contacts"]

    @property
    def meetings(self) -> dict[str, HubObject]:
        """Live meetings by id."""
        return self.objects["meetings"]

    def get(self, kind: str, object_id: str) -> HubObject:
        """Return a live object, or raise 404 OBJECT_NOT_FOUND."""
        found = self.objects[kind].get(object_id)
        if found is None:
            raise not_found(kind[:-1], object_id)
        return found

    def contact_by_email(self, email: str) -> HubObject | None:
        """The live contact with this e-mail address (any case), if any."""
        object_id = self._emails.get(email.lower())
        return None if object_id is None else self.contacts[object_id]

    def create(self, kind: str, properties: dict[str, str | None]) -> HubObject:
        """Store a new object (a contact's e-mail must be free, else 409 naming the holder)."""
        email = properties.get("email")
        if kind == "contacts" and email:
            self._claim_email(email, None)
        now = self._clock.now()
        object_id = str(next(self._ids))
        created_key, modified_key = _STAMPS[kind]
        props = {key: value for key, value in properties.items() if value not in (None, "")}
        props.update({"hs_object_id": object_id, created_key: hs_time(now), modified_key: hs_time(now)})
        record = self.objects[kind][object_id] = HubObject(kind, object_id, props, now, now)
        if kind == "contacts" and email:
            self._emails[email.lower()] = object_id
        return record

    def update(self, kind: str, object_id: str, properties: dict[str, str | None]) -> dict[str, str | None]:
        """Apply properties ("" or None clears one); return the ones whose value changed."""
        record = self.get(kind, object_id)
        new = {key: (value or None) for key, value in properties.items()}
        changed = {key: value for key, value in new.items() if record.properties.get(key) != value}
        if kind == "contacts" and changed.get("email"):
            self._claim_email(str(changed["email"]), object_id)
        if not changed:
            return changed
        if kind == "contacts" and "email" in changed:
            old = record.properties.get("email")
            if old:
                self._emails.pop(old.lower(), None)
            if changed["email"]:
                self._emails[str(changed["email"]).lower()] = object_id
        for key, value in changed.items():
            if value is None:
                record.properties.pop(key, None)
            else:
                record.properties[key] = value
        record.updated_at = self._clock.now()
        record.properties[_STAMPS[kind][1]] = hs_time(record.updated_at)
        return changed

    def archive(self, kind: str, object_id: str) -> HubObject | None:
        """Remove an object and its associations; None when there was none (HubSpot still answers 204)."""
        record = self.objects[kind].pop(object_id, None)
        if record is None:
            return None
        other = "meetings" if kind == "contacts" else "contacts"
        for linked in record.associations:
            if linked in self.objects[other]:
                self.objects[other][linked].associations.discard(object_id)
        email = record.properties.get("email")
        if kind == "contacts" and email:
            self._emails.pop(email.lower(), None)
        return record

    def associate(self, meeting_id: str, contact_id: str, on: bool = True) -> None:
        """Link (or unlink) a meeting and a contact; both must exist."""
        meeting, contact = self.get("meetings", meeting_id), self.get("contacts", contact_id)
        if on:
            meeting.associations.add(contact_id)
            contact.associations.add(meeting_id)
        else:
            meeting.associations.discard(contact_id)
            contact.associations.discard(meeting_id)

    def _claim_email(self, email: str, own_id: str | None) -> None:
        """Raise 409 CONFLICT when another live contact has this address."""
        holder = self._emails.get(email.lower())
        if holder is not None and holder != own_id:
            raise conflict(holder)
