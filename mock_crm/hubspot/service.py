"""Writes to contacts and meetings, shared by the API handlers and the admin "as a person" routes.

Every contact change also queues HubSpot's webhook events: changeSource INTEGRATION for API calls,
CRM_UI for the admin routes (a person in HubSpot).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mock_crm.bodies import read_json
from mock_crm.errors import InvalidJson
from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import validation
from mock_crm.hubspot.store import HubObject

API, PERSON = "INTEGRATION", "CRM_UI"


async def read_body(request: web.Request) -> Any:
    """The parsed JSON body, or HubSpot's 400 for input that is not JSON."""
    try:
        return await read_json(request)
    except InvalidJson as exc:
        raise validation(f"Invalid input JSON: {exc.message}") from None


def create_contact(app: web.Application, props: dict[str, str | None], source: str) -> HubObject:
    """Store a new contact (409 when its e-mail is taken) and queue contact.creation."""
    record = app[keys.store].create("contacts", props)
    app[keys.events].emit("contact.creation", record.id, source)
    return record


def update_object(
    app: web.Application, kind: str, object_id: str, props: dict[str, str | None], source: str
) -> HubObject:
    """Apply changed properties; for a contact queue one contact.propertyChange per changed property."""
    store = app[keys.store]
    changed = store.update(kind, object_id, props)
    if kind == "contacts":
        for name, value in changed.items():
            app[keys.events].emit("contact.propertyChange", object_id, source, name, value)
    return store.get(kind, object_id)


def archive_object(app: web.Application, kind: str, object_id: str, source: str) -> bool:
    """Archive an object if it exists (queue contact.deletion for a contact); True when there was one."""
    record = app[keys.store].archive(kind, object_id)
    if record is not None and kind == "contacts":
        app[keys.events].emit("contact.deletion", object_id, source)
    return record is not None
