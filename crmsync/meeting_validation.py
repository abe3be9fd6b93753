"""Meeting bodies: a title, a start, an optional end, and attendees that are existing users."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from .errors import ValidationFailed
from .timeutil import isoformat, parse_iso
from .validation import UNSET, check_name, structure

MAX_ATTENDEES = 100


@attrs.frozen
class MeetingFields:
    """Any of these may be UNSET in a partial update; ends_at may be null."""

    title: str = UNSET
    starts_at: str = UNSET
    ends_at: str | None = UNSET
    attendee_ids: list[str] = UNSET

    def present(self) -> dict[str, Any]:
        """The fields this body set."""
        return {k: v for k, v in attrs.asdict(self).items() if v is not UNSET}


def validate_meeting(body: dict[str, Any], partial: bool, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check a meeting body; return normalised values. Attendee existence is checked by the caller."""
    fields = structure(body, MeetingFields).present()
    errors: dict[str, str] = {}
    if not partial:
        errors.update({k: "is required" for k in ("title", "starts_at") if k not in fields})
    elif not fields:
        raise ValidationFailed({"body": "must set at least one of title, starts_at, ends_at, attendee_ids"})
    if "title" in fields and (reason := check_name(fields["title"])):
        errors["title"] = reason
    for name in ("starts_at", "ends_at"):
        if fields.get(name) is not None:
            try:
                fields[name] = isoformat(parse_iso(fields[name]))
            except ValueError:
                errors[name] = "must be an ISO-8601 date and time, e.g. 2026-11-21T15:00:00Z"
    starts, ends = {**(current or {}), **fields}.get("starts_at"), {**(current or {}), **fields}.get("ends_at")
    if starts and ends and not errors.keys() & {"starts_at", "ends_at"} and ends < starts:
        errors["ends_at"] = "must not be before starts_at"
    if "attendee_ids" in fields:
        ids = fields["attendee_ids"]
        if len(ids) > MAX_ATTENDEES:
            errors["attendee_ids"] = f"must list at most {MAX_ATTENDEES} users"
        elif any(not _is_uuid(i) for i in ids):
            errors["attendee_ids"] = "must list user ids"
    if errors:
        raise ValidationFailed(errors)
    if "title" in fields:
        fields["title"] = fields["title"].strip()
    return fields


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
