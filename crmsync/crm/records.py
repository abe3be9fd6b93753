"""Reading the CRM's answers: records checked and normalised, errors turned into sentences."""

from __future__ import annotations

from typing import Any

from ..timeutil import normalise_iso
from .errors import CrmError, CrmRejected, CrmUnavailable

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
        except CrmError:
            return 0, {}
    return status, body


def record(status: int, body: Any, wanted: int) -> Record:
    """A contact record, checked to carry a crm_id and a timestamp, with the timestamp in our format.

    A success whose record is malformed is transient: a proxy or a CRM release mangled it, and the
    write may well have been applied, so the job tries again rather than giving up.
    """
    checked = expect(status, body, wanted, "contact")
    if not isinstance(checked.get("crm_id"), str) or not checked["crm_id"]:
        raise CrmUnavailable("The CRM answered with a contact record that lacks crm_id.", status)
    try:
        updated_at = normalise_iso(checked.get("updated_at"))
    except ValueError:
        raise CrmUnavailable("The CRM answered with a contact record that lacks a valid updated_at.", status) from None
    return {**checked, "updated_at": updated_at}


def expect(status: int, body: Any, wanted: int, noun: str) -> Record:
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
