"""The record types the mock CRM keeps in memory, and their JSON form."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import attrs

from mock_crm.clock import format_ts


def new_id(prefix: str) -> str:
    """Return a random id such as CRM1f3a9c0b7d2e4a68 that no restart will hand out again."""
    return prefix + secrets.token_hex(8)


@attrs.define
class User:
    """A contact in the CRM."""

    crm_id: str
    name: str
    email: str
    phone: str
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """Return the API representation."""
        return {
            "crm_id": self.crm_id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "updated_at": format_ts(self.updated_at),
        }


@attrs.define
class Meeting:
    """A meeting with its associated contacts."""

    meeting_id: str
    title: str
    starts_at: datetime
    ends_at: datetime | None
    updated_at: datetime
    contact_ids: list[str] = attrs.Factory(list)

    def to_json(self) -> dict[str, Any]:
        """Return the API representation."""
        return {
            "meeting_id": self.meeting_id,
            "title": self.title,
            "starts_at": format_ts(self.starts_at),
            "ends_at": None if self.ends_at is None else format_ts(self.ends_at),
            "contact_ids": list(self.contact_ids),
            "updated_at": format_ts(self.updated_at),
        }


def json_value(value: Any) -> Any:
    """Render one field value the way to_json does (for webhook updated_fields)."""
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, list):
        return list(value)
    return value
