"""The HubSpot fake's app factory: state on typed keys, middlewares, routes, cleanup contexts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from mock_crm import keys as mock_keys
from mock_crm.admin import healthz
from mock_crm.app import observe_middleware
from mock_crm.hubspot import admin, associations, contacts, keys, meetings, search
from mock_crm.hubspot.auth import bearer_middleware, token_handler
from mock_crm.hubspot.config import HubSpotConfig
from mock_crm.hubspot.guard import add_rate_headers, faults_middleware, ratelimit_middleware
from mock_crm.hubspot.limits import RateLimits
from mock_crm.hubspot.middleware import hubspot_error_middleware
from mock_crm.hubspot.settings import FakeFaults
from mock_crm.hubspot.store import HubStore
from mock_crm.hubspot.tokens import AccessTokens
from mock_crm.hubspot.webhooks import EventBatcher
from mock_crm.lifecycle import webhook_worker
from mock_crm.stats import Stats

_CONTACT = "/crm/v3/objects/contacts"
_MEETING = "/crm/v3/objects/meetings"
_ASSOC = "/crm/v4/objects/{from_type}/{from_id}/associations"


def _routes(router: web.UrlDispatcher) -> None:
    """Register every route (fixed paths before {id} so they are never taken for an id)."""
    router.add_get("/healthz", healthz)
    router.add_post("/oauth/v1/token", token_handler)
    router.add_post(f"{_CONTACT}/batch/upsert", contacts.batch_upsert)
    router.add_post(f"{_CONTACT}/batch/read", contacts.batch_read)
    router.add_post(f"{_CONTACT}/search", search.search)
    router.add_post(_CONTACT, contacts.post_contact)
    router.add_get(_CONTACT + "/{contact_id}", contacts.get_contact)
    router.add_patch(_CONTACT + "/{contact_id}", contacts.patch_contact)
    router.add_delete(_CONTACT + "/{contact_id}", contacts.delete_contact)
    router.add_post(f"{_MEETING}/search", search.search)
    router.add_post(_MEETING, meetings.post_meeting)
    router.add_get(_MEETING + "/{meeting_id}", meetings.get_meeting)
    router.add_patch(_MEETING + "/{meeting_id}", meetings.patch_meeting)
    router.add_delete(_MEETING + "/{meeting_id}", meetings.delete_meeting)
    router.add_put(_ASSOC + "/default/{to_type}/{to_id}", associations.put_default)
    router.add_get(_ASSOC + "/{to_type}", associations.list_associations)
    router.add_delete(_ASSOC + "/{to_type}/{to_id}", associations.delete_association)
    router.add_post("/_fake/contacts", admin.create_as_person)
    router.add_patch("/_fake/contacts/{contact_id}", admin.edit_as_person)
    router.add_delete("/_fake/contacts/{contact_id}", admin.delete_as_person)
    router.add_get("/_fake/faults", admin.get_faults)
    router.add_put("/_fake/faults", admin.put_faults)
    router.add_post("/_fake/tokens/expire", admin.expire_tokens)
    router.add_get("/_fake/stats", admin.get_stats)
    router.add_get("/openapi.json", openapi)


OPENAPI = Path(__file__).resolve().parent / "openapi.json"


async def openapi(_: web.Request) -> web.FileResponse:
    """GET /openapi.json: our OpenAPI 3.1 description of the fake's routes."""
    return web.FileResponse(OPENAPI, headers={"Content-Type": "application/json"})


async def http_session(app: web.Application) -> AsyncIterator[None]:
    """Own the app's one ClientSession (for webhook deliveries) while the app runs."""
    timeout = aiohttp.ClientTimeout(total=app[keys.config].webhook_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[mock_keys.http] = session
        yield


def create_app(config: HubSpotConfig) -> web.Application:
    """Build the HubSpot fake (no I/O; the session and the webhook worker start with the app)."""
    app = web.Application(
        middlewares=[
            observe_middleware,
            hubspot_error_middleware,
            bearer_middleware,
            ratelimit_middleware,
            faults_middleware,
        ]
    )
    stats = Stats()
    faults = FakeFaults.from_config(config)
    events = EventBatcher(config, stats)
    app[keys.config] = config
    app[keys.store] = HubStore()
    app[keys.faults] = faults
    app[keys.limits] = RateLimits(faults)
    app[keys.tokens] = AccessTokens(config.access_token, config.token_ttl)
    app[keys.events] = events
    app[mock_keys.stats] = stats
    app[mock_keys.rng] = random.Random(config.seed)  # drives faults, not secrets
    app[mock_keys.webhooks] = events.dispatcher
    _routes(app.router)
    app.on_response_prepare.append(add_rate_headers)
    app.cleanup_ctx.append(http_session)
    app.cleanup_ctx.append(webhook_worker)
    return app
