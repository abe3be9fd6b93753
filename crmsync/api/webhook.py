"""POST /webhook: signed CRM change notifications, verified on the raw body before parsing."""

from __future__ import annotations

import logging

from aiohttp import web

from ..auth import public
from ..errors import ServiceError, Unauthorized
from ..keys import crm_key, engine_key
from ..render import json_response
from ..signatures import SignatureError
from ..sync import webhooks

logger = logging.getLogger(__name__)


@public
async def receive_webhook(request: web.Request) -> web.Response:
    """Verify on the raw bytes, then validate, then apply once; the status tells the sender whether to retry."""
    raw = await request.read()
    crm = request.app[crm_key]
    try:
        event_id = crm.verify_webhook(request.headers, raw)
    except SignatureError as exc:
        logger.warning(
            "webhook_unverified", extra={"reason": str(exc), "webhook_id": request.headers.get("webhook-id")}
        )
        raise Unauthorized("The webhook signature is missing, invalid or too old.") from None
    logger.info("webhook_received", extra={"event_id": event_id})
    engine = request.app[engine_key]
    try:
        event = crm.parse_webhook(event_id, raw)
    except ServiceError as exc:
        engine.metrics.webhooks.labels("rejected").inc()
        await webhooks.record_invalid(engine.db, event_id, crm.webhook_crm_id(raw), raw, exc)
        raise
    if event is None:
        logger.info("webhook_ignored", extra={"event_id": event_id, "reason": "meeting events are not synced back"})
        return json_response({"result": "ignored"})
    handled = await webhooks.receive(engine, event)
    return json_response({"result": handled.result, "user_id": handled.user_id,
                          "changed_fields": handled.changed_fields, "conflicts": list(handled.conflicts)})  # fmt: skip
