"""Webhook events in HubSpot's shape, gathered into batches (JSON arrays) and signed per attempt with v3."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from typing import Any

from mock_crm.hubspot.config import HubSpotConfig
from mock_crm.hubspot.signing import sign_v3
from mock_crm.stats import Stats
from mock_crm.webhooks import WebhookDispatcher, WebhookEvent

logger = logging.getLogger(__name__)

SUBSCRIPTIONS = {"contact.creation": 4001, "contact.propertyChange": 4002, "contact.deletion": 4003}


class EventBatcher:
    """Collects the events of one turn of the event loop and queues them as batches of up to webhook_batch."""

    def __init__(self, config: HubSpotConfig, stats: Stats) -> None:
        """Deliver through the mock's dispatcher (retries, round robin, counters) with HubSpot's signing."""
        self.config = config
        self.dispatcher = WebhookDispatcher(config, stats, self.prepare)  # type: ignore[arg-type]
        self.events_emitted = 0
        self._pending: list[dict[str, Any]] = []
        self._event_ids = itertools.count(100_001)
        self._batch_ids = itertools.count(1)

    def emit(self, kind: str, object_id: str, change_source: str, prop: str | None = None, value: Any = None) -> None:
        """Queue one event (contact.creation, contact.propertyChange with prop and value, contact.deletion)."""
        if not self.config.webhook_urls:
            return
        event: dict[str, Any] = {
            "eventId": next(self._event_ids),
            "subscriptionId": SUBSCRIPTIONS[kind],
            "portalId": self.config.portal_id,
            "appId": self.config.app_id,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeFlag": {"contact.creation": "CREATED", "contact.deletion": "DELETED"}.get(kind, "UPDATED"),
            "changeSource": change_source,
            "sourceId": f"userId:{self.config.portal_id}" if change_source == "CRM_UI" else str(self.config.app_id),
        }
        if kind == "contact.propertyChange":
            event["propertyName"], event["propertyValue"] = prop, "" if value is None else value
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(event)
        self.events_emitted += 1

    def flush(self) -> None:
        """Hand the pending events to the dispatcher in batches."""
        pending, self._pending = self._pending, []
        size = self.config.webhook_batch
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            batch_id = f"batch_{next(self._batch_ids)}"
            ids = ",".join(str(event["objectId"]) for event in batch)
            body = json.dumps(batch, separators=(",", ":")).encode()
            self.dispatcher.queue.put_nowait(WebhookEvent(batch_id, "objectIds", ids, body))
            self.dispatcher.stats.webhooks_emitted += 1
            logger.info("webhook_batch_queued", extra={"batch_id": batch_id, "events": len(batch)})

    def prepare(self, event: WebhookEvent, url: str, attempt: int) -> tuple[dict[str, str], bytes]:
        """The body with this attempt's attemptNumber, signed v3 for this URL at this moment."""
        batch = json.loads(event.body)
        for item in batch:
            item["attemptNumber"] = attempt - 1
        body = json.dumps(batch, separators=(",", ":"))
        timestamp = int(time.time() * 1000)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Request-Timestamp": str(timestamp),
            "X-HubSpot-Signature-v3": sign_v3(self.config.app_secret, "POST", url, body, timestamp),
        }
        return headers, body.encode()
