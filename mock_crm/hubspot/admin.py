"""Admin routes under /_fake/: act as a person in HubSpot, read counters, change limits and faults, expire tokens."""

from __future__ import annotations

import logging

from aiohttp import web

from mock_crm import keys as mock_keys
from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import not_found
from mock_crm.hubspot.properties import check_properties, render
from mock_crm.hubspot.service import PERSON, archive_object, create_contact, read_body, update_object

logger = logging.getLogger(__name__)


async def create_as_person(request: web.Request) -> web.Response:
    """POST /_fake/contacts {"properties": {...}}: a person adds a contact; webhook contact.creation (CRM_UI)."""
    props = check_properties("contacts", await read_body(request))
    return web.json_response(render(create_contact(request.app, props, PERSON), list(props) or None), status=201)


async def edit_as_person(request: web.Request) -> web.Response:
    """PATCH /_fake/contacts/{contact_id}: a person edits; one contact.propertyChange per changed property."""
    contact_id = request.match_info["contact_id"]
    request.app[keys.store].get("contacts", contact_id)
    props = check_properties("contacts", await read_body(request))
    return web.json_response(render(update_object(request.app, "contacts", contact_id, props, PERSON)))


async def delete_as_person(request: web.Request) -> web.Response:
    """DELETE /_fake/contacts/{contact_id}: a person deletes; webhook contact.deletion. 404 when there is none."""
    contact_id = request.match_info["contact_id"]
    if not archive_object(request.app, "contacts", contact_id, PERSON):
        raise not_found("contact", contact_id)
    return web.Response(status=204)


async def get_faults(request: web.Request) -> web.Response:
    """GET /_fake/faults: the limits and faults in force."""
    return web.json_response(request.app[keys.faults].to_json())


async def put_faults(request: web.Request) -> web.Response:
    """PUT /_fake/faults: change any subset (e.g. {"daily_exhausted": true}), effective at once."""
    settings = request.app[keys.faults]
    settings.apply(await read_body(request))
    logger.info("hubspot_faults_changed", extra=settings.to_json())
    return web.json_response(settings.to_json())


async def expire_tokens(request: web.Request) -> web.Response:
    """POST /_fake/tokens/expire: every OAuth access token issued so far is expired from now on."""
    return web.json_response({"expired": request.app[keys.tokens].expire_all()})


async def get_stats(request: web.Request) -> web.Response:
    """GET /_fake/stats: the mock's counters plus object and event counts."""
    data = request.app[mock_keys.stats].to_json()
    store = request.app[keys.store]
    data.update(contacts=len(store.contacts), meetings=len(store.meetings),
                webhook_events=request.app[keys.events].events_emitted)  # fmt: skip
    return web.json_response(data)
