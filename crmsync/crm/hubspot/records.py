"""HubSpot's CRM v3 objects as our types: contacts' properties to our fields and back, errors into sentences."""

from __future__ import annotations

import re
from typing import Any

from ...timeutil import normalise_iso
from ..errors import CrmRejected, CrmUnavailable
from ..types import ContactPage, CrmContact
from .names import join_name, split_name

# What we read of a contact: our three fields and the stamp of its last change.
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "phone", "lastmodifieddate")
_EXISTING_ID = re.compile(r"Existing ID: ?(\d+)")


def properties_of(fields: dict[str, str]) -> dict[str, str]:
    """Our fields as HubSpot properties; a name becomes firstname and lastname (see names.split_name)."""
    props = {field: value for field, value in fields.items() if field in ("email", "phone")}
    if "name" in fields:
        props["firstname"], props["lastname"] = split_name(fields["name"])
    return props


def contact(status: int, body: Any, wanted: tuple[int, ...], noun: str = "contact") -> CrmContact:
    """A SimplePublicObject answered with one of the wanted statuses, as a CrmContact.

    A success whose record lacks an id or a valid lastmodifieddate is transient (the write may have been
    applied); any other status is CrmRejected with HubSpot's message.
    """
    record = expect(status, body, wanted, noun)
    try:
        return to_contact(record)
    except ValueError as exc:
        raise CrmUnavailable(f"HubSpot answered with a contact record that {exc}.", status) from None


def to_contact(record: dict[str, Any]) -> CrmContact:
    """A HubSpot contact object as a CrmContact; ValueError (saying what is missing) when it is not one.

    changed_at is lastmodifieddate (updatedAt when the property was not returned); it is also the version an
    emulated conditional write compares, since HubSpot has no ETag.
    """
    crm_id = record.get("id")
    if isinstance(crm_id, int) and not isinstance(crm_id, bool):
        crm_id = str(crm_id)
    if not isinstance(crm_id, str) or not crm_id:
        raise ValueError("lacks its id")
    props = record.get("properties")
    props = props if isinstance(props, dict) else {}
    try:
        changed_at = normalise_iso(props.get("lastmodifieddate") or record.get("updatedAt"))
    except ValueError:
        raise ValueError("lacks a valid lastmodifieddate") from None
    fields: dict[str, str] = {}
    first, last = props.get("firstname"), props.get("lastname")
    if isinstance(first, str) or isinstance(last, str):
        fields["name"] = join_name(first if isinstance(first, str) else None, last if isinstance(last, str) else None)
    for field in ("email", "phone"):
        if isinstance(value := props.get(field), str) and value:
            fields[field] = value
    return CrmContact(crm_id, fields, changed_at, changed_at)


def page(results: Any) -> ContactPage:
    """A search page's results as a ContactPage (unreadable records counted as malformed)."""
    contacts: list[CrmContact] = []
    malformed: list[str | None] = []
    for item in results if isinstance(results, list) else []:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            contacts.append(to_contact(item))
        except ValueError:
            crm_id = item.get("id") if isinstance(item, dict) else None
            malformed.append(str(crm_id) if isinstance(crm_id, str | int) else None)
    return ContactPage(contacts, malformed)


def existing_id(body: Any) -> str | None:
    """The contact id a 409 CONFLICT names ("Contact already exists. Existing ID: 12345"), if any."""
    message = body.get("message") if isinstance(body, dict) else None
    found = _EXISTING_ID.search(message) if isinstance(message, str) else None
    return found.group(1) if found else None


def expect(status: int, body: Any, wanted: tuple[int, ...], noun: str) -> dict[str, Any]:
    """The body when the status is one of those wanted, else CrmRejected with HubSpot's message."""
    if status in wanted and isinstance(body, dict):
        return body
    if status in wanted:
        raise CrmUnavailable(f"HubSpot answered the {noun} with something that is not a JSON object.", status)
    refusal = body if isinstance(body, dict) else None
    raise CrmRejected(f"HubSpot rejected the {noun}: {reason(body, status)}", status, refusal)


def reason(body: Any, status: int) -> str:
    """HubSpot's error body in words: its message, or each invalid property's message."""
    if not isinstance(body, dict):
        return f"HTTP {status}"
    details = body.get("errors")
    if isinstance(details, list):
        named = [
            f"{_property(item)}: {item['message']}" if _property(item) else str(item["message"])
            for item in details
            if isinstance(item, dict) and isinstance(item.get("message"), str)
        ]
        if named:
            return "; ".join(named)[:500]
    message = body.get("message")
    return (message if isinstance(message, str) and message else f"HTTP {status}")[:500]


def _property(item: dict[str, Any]) -> str:
    """The property a HubSpot error detail names (context.propertyName), mapped back to our field."""
    context = item.get("context")
    names = context.get("propertyName") if isinstance(context, dict) else None
    name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else ""
    return "name" if name in ("firstname", "lastname") else name
