"""Reading the mock CRM's answers: records checked and turned into CrmContacts, errors into sentences."""

from __future__ import annotations

from typing import Any

from ...timeutil import normalise_iso
from ..errors import CrmError, CrmRejected, CrmUnavailable
from ..types import BatchItem, ContactPage, CrmContact

# The mock CRM names a contact's fields as we do.
FIELDS = ("name", "email", "phone")


def batch_item(result: Any) -> BatchItem:
    """One batch result; a created record is checked like a single one (status 0: unreadable)."""
    status = result.get("status") if isinstance(result, dict) else None
    body = result.get("body") if isinstance(result, dict) else None
    if not isinstance(status, int) or not isinstance(body, dict):
        return BatchItem(0)
    if status == 201:
        try:
            return BatchItem(201, contact(201, body, 201))
        except CrmError:
            return BatchItem(0)
    return BatchItem(status)


def contact(status: int, body: Any, wanted: int) -> CrmContact:
    """A contact record, checked to carry a crm_id and a timestamp.

    A success whose record is malformed is transient: a proxy or a CRM release mangled it, and the
    write may well have been applied, so the job tries again rather than giving up.
    """
    checked = expect(status, body, wanted, "contact")
    if not isinstance(checked.get("crm_id"), str) or not checked["crm_id"]:
        raise CrmUnavailable("The CRM answered with a contact record that lacks crm_id.", status)
    try:
        return to_contact(checked)
    except ValueError:
        raise CrmUnavailable("The CRM answered with a contact record that lacks a valid updated_at.", status) from None


def to_contact(record: dict[str, Any]) -> CrmContact:
    """The mock's record as a CrmContact; ValueError without a valid updated_at. Its updated_at is its version."""
    changed_at = normalise_iso(record.get("updated_at"))
    fields = {f: v for f in FIELDS if isinstance(v := record.get(f), str)}
    return CrmContact(record["crm_id"], fields, changed_at, changed_at)


def page(items: Any, next_cursor: Any) -> ContactPage:
    """A listing's items as a ContactPage; an item that is no readable record is counted as malformed."""
    contacts: list[CrmContact] = []
    malformed: list[str | None] = []
    for item in items if isinstance(items, list) else []:
        crm_id = item.get("crm_id") if isinstance(item, dict) else None
        crm_id = crm_id if isinstance(crm_id, str) else None
        try:
            if crm_id is None:
                raise ValueError("no crm_id")
            contacts.append(to_contact(item))
        except ValueError:
            malformed.append(crm_id)
    return ContactPage(contacts, malformed, next_cursor if isinstance(next_cursor, str) else None)


def expect(status: int, body: Any, wanted: int, noun: str) -> dict[str, Any]:
    """The body when the status is the one wanted, else CrmRejected with the CRM's reason in words.

    The wanted status with a body that is no JSON object is CrmUnavailable: the answer is unusable,
    not a refusal.
    """
    if status == wanted and isinstance(body, dict):
        return body
    if status == wanted:
        raise CrmUnavailable(f"The CRM answered with {_shape(body)} where a {noun} object was expected.", status)
    raise CrmRejected(
        f"The CRM rejected the {noun}: {_reason(body, status)}", status, body if isinstance(body, dict) else None
    )


def _shape(body: Any) -> str:
    """What a JSON value is, in words."""
    if isinstance(body, list):
        return "a JSON array"
    if isinstance(body, str):
        return "a JSON string"
    if body is None:
        return "JSON null"
    return "a JSON " + ("boolean" if isinstance(body, bool) else "number")


def _reason(body: Any, status: int) -> str:
    """Turn the CRM's error body into words, e.g. 'phone: must have 7 to 15 digits'."""
    if not isinstance(body, dict):
        return f"HTTP {status}"
    fields = body.get("fields")
    if isinstance(fields, dict) and fields:
        return "; ".join(f"{k} {v}" for k, v in fields.items())[:500]
    return str(body.get("message") or body.get("error") or f"HTTP {status}")[:500]
