"""Reading the CRM's answers: records checked and normalised, errors turned into sentences."""

from __future__ import annotations

from typing import Any

from ..timeutil import normalise_iso
from .errors import CrmRejected

Record = dict[str, Any]


def batch_item(result: Any) -> tuple[int, dict[str, Any]]:
    """One batch result as (status, body); a created record is checked like a single one."""
    status = result.get("status") if isinstance(result, dict) else None
    body = result.get("body") if isinstance(result, dict) else None
    if not isinstance(status, int) or not isinstance(body, dict):
        return 0, {}
    if status == 201:
        try:
            return 201, record(201, body, 201)
        except CrmRejected:
            return 0, {}
    return status, body


def record(status: int, body: Any, wanted: int) -> Record:
    """A contact record, checked to carry a crm_id and a timestamp, with the timestamp in our format."""
    checked = expect(status, body, wanted, "contact")
    try:
        updated_at = normalise_iso(checked.get("updated_at"))
    except ValueError:
        updated_at = ""
    if not isinstance(checked.get("crm_id"), str) or not updated_at:
        raise CrmRejected("The CRM answered with a contact record that lacks its id or timestamp.", status)
    return {**checked, "updated_at": updated_at}


def expect(status: int, body: Any, wanted: int, noun: str) -> Record:
    """The body when the status is the one wanted, else CrmRejected with the CRM's reason in words."""
    if status == wanted and isinstance(body, dict):
        return body
    raise CrmRejected(
        f"The CRM rejected the {noun}: {_reason(body, status)}", status, body if isinstance(body, dict) else None
    )


def _reason(body: Any, status: int) -> str:
    """Turn the CRM's error body into words, e.g. 'phone: must have 7 to 15 digits'."""
    if not isinstance(body, dict):
        return f"HTTP {status}"
    fields = body.get("fields")
    if isinstance(fields, dict) and fields:
        return "; ".join(f"{k} {v}" for k, v in fields.items())[:500]
    return str(body.get("message") or body.get("error") or f"HTTP {status}")[:500]
