"""Which properties each object takes, and strict checks of request bodies' property maps."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from mock_crm.hubspot.errors import HubSpotError, validation
from mock_crm.hubspot.store import HubObject, hs_time

WRITABLE = {
    "contacts": frozenset({"firstname", "lastname", "email", "phone", "company", "jobtitle", "lifecyclestage"}),
    "meetings": frozenset({"hs_timestamp", "hs_meeting_title", "hs_meeting_body", "hs_meeting_start_time",
                           "hs_meeting_end_time", "hs_meeting_location", "hs_meeting_outcome",
                           "hs_internal_meeting_notes", "hubspot_owner_id"}),
}  # fmt: skip
READ_ONLY = {
    "contacts": frozenset({"hs_object_id", "createdate", "lastmodifieddate"}),
    "meetings": frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}),
}
DEFAULT_READ = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "meetings": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
DATETIMES = frozenset({"hs_timestamp", "hs_meeting_start_time", "hs_meeting_end_time", "createdate",
                       "lastmodifieddate", "hs_createdate", "hs_lastmodifieddate"})  # fmt: skip
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_datetime(text: str) -> datetime:
    """Read a HubSpot date-time value: epoch milliseconds or ISO 8601 (a zone, or UTC); raise ValueError."""
    if text.isascii() and text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_properties(kind: str, body: Any, *, required: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Return the validated `properties` map of a body, or raise HubSpot's 400 for the first bad ones."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise validation("Invalid input JSON: `properties` must be an object of property names to values.")
    props: dict[str, Any] = body["properties"]
    problems: list[dict[str, str]] = []
    clean: dict[str, str | None] = {}
    for name, value in props.items():
        code = _problem(kind, name, value)
        if code:
            problems.append({"isValid": False, "message": _MESSAGES[code].format(name=name[:64]), "error": code,
                             "name": name[:64]})  # fmt: skip
        elif name in DATETIMES and value:
            clean[name] = hs_time(parse_datetime(value))
        else:
            clean[name] = value.strip().lower() if name == "email" and value else value
    problems += [{"isValid": False, "message": f"Property \"{name}\" is required", "error": "REQUIRED",
                  "name": name} for name in required if not clean.get(name)]  # fmt: skip
    if problems:
        raise property_error(problems)
    return clean


def property_error(problems: list[dict[str, Any]]) -> HubSpotError:
    """HubSpot's 400 for invalid property values, listing each one."""
    message = "Property values were not valid: " + json.dumps(problems[:20])
    errors = [{"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
              for p in problems[:20]]  # fmt: skip
    return validation(message, errors=errors)


_MESSAGES = {
    "PROPERTY_DOESNT_EXIST": 'Property "{name}" does not exist',
    "READ_ONLY_VALUE": '"{name}" is a read only property; its value cannot be set.',
    "INVALID_EMAIL": "Email address is invalid",
    "INVALID_DATETIME": '"{name}" must be epoch milliseconds or an ISO 8601 date-time',
    "INVALID_TYPE": '"{name}" must be a string',
}


def _problem(kind: str, name: Any, value: Any) -> str | None:
    """The error code for one property, or None when it is fine."""
    if name in READ_ONLY[kind]:
        return "READ_ONLY_VALUE"
    if name not in WRITABLE[kind]:
        return "PROPERTY_DOESNT_EXIST"
    if value is not None and not isinstance(value, str):
        return "INVALID_TYPE"
    if name == "email" and value and (len(value) > 254 or not _EMAIL.match(value.strip())):
        return "INVALID_EMAIL"
    if name in DATETIMES and value:
        try:
            parse_datetime(value)
        except (ValueError, OverflowError, OSError):
            return "INVALID_DATETIME"
    return None


def render(record: HubObject, names: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A SimplePublicObject: id, the asked properties (default set when none), timestamps, archived."""
    wanted = list(DEFAULT_READ[record.kind]) if not names else [*names, *READ_ONLY[record.kind]]
    return {
        "id": record.id,
        "properties": {name: record.properties.get(name) for name in sorted(set(wanted))},
        "createdAt": hs_time(record.created_at),
        "updatedAt": hs_time(record.updated_at),
        "archived": False,
        **extra,
    }


def asked_properties(query: Any) -> list[str] | None:
    """The `properties` query parameter (repeated or comma-separated), or None."""
    values = [part for value in query.getall("properties", []) for part in value.split(",") if part]
    return values or None
