"""POST /webhook/hubspot: HubSpot's signed batches of contact events, verified on the raw body before parsing."""

from __future__ import annotations

import logging

from aiohttp import web

from ..auth import public
from ..crm.hubspot.adapter import HubSpotAdapter
from ..crm.hubspot.signature import SIGNATURE_HEADER, verify_v3
from ..errors import NotFound, Unauthorized
from ..keys import config_key, crm_key, engine_key
from ..render import json_response
from ..signatures import SignatureError
from ..sync import hubspot_events

logger = logging.getLogger(__name__)


@public
async def receive_hubspot_webhook(request: web.Request) -> web.Response:
    """Check X-HubSpot-Signature-v3 over method, URL, raw body and timestamp; then apply each event once.

    200 with a result per event; 401 for a bad signature; 422 for a malformed batch; 503 with Retry-After
    when some events must be delivered again (HubSpot then retries the whole batch; what was applied is only
    acknowledged).
    """
    crm = request.app[crm_key]
    settings = request.app[config_key].hubspot
    if not isinstance(crm, HubSpotAdapter) or settings is None:
        raise NotFound("HubSpot webhooks are received only when CRMSYNC_CRM=hubspot.")
    raw = await request.read()
    uri = settings.webhook_url or str(request.url)
    try:
        verify_v3(settings.app_secrets, request.method, uri, raw, request.headers)
    except SignatureError as exc:
        logger.warning("webhook_unverified", extra={"reason": str(exc), "dialect": "hubspot",
                                                    "signed": SIGNATURE_HEADER in request.headers})  # fmt: skip
        raise Unauthorized("The webhook signature is missing, invalid or too old.") from None
    delivery = hubspot_events.parse_batch(raw, settings.app_id)
    logger.info("webhook_batch_received", extra={"dialect": "hubspot", "events": len(delivery.events),
                                                 "ignored": delivery.ignored})  # fmt: skip
    results = await hubspot_events.receive_batch(request.app[engine_key], crm, delivery)
    return json_response({"results": results, "ignored": delivery.ignored})
