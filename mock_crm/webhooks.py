"""Webhook events: built on each update, queued, and delivered (signed) by a background dispatcher."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from datetime import datetime
from typing import Any

import aiohttp
import attrs

from mock_crm.clock import format_ts
from mock_crm.config import MockConfig
from mock_crm.delivery import Prepare, deliver
from mock_crm.records import json_value
from mock_crm.signing import sign
from mock_crm.stats import Stats

__all__ = ["WebhookDispatcher", "WebhookEvent", "sign"]

logger = logging.getLogger(__name__)


@attrs.frozen
class WebhookEvent:
    """One change notification, serialised once so every retry sends the same bytes."""

    event_id: str
    id_field: str  # "crm_id" or "meeting_id"
    target_id: str
    body: bytes


class WebhookDispatcher:
    """Queues events and, while running, delivers each one in its own task."""

    def __init__(self, config: MockConfig, stats: Stats, prepare: Prepare | None = None) -> None:
        """Deliver to config.webhook_urls in turn; emitting does nothing when there is none."""
        self.config = config
        self.stats = stats
        self.prepare = prepare  # None: the mock's Standard Webhooks signing
        self.queue: asyncio.Queue[WebhookEvent] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns = itertools.count()  # round robin over the webhook URLs, one turn per event

    def emit(
        self,
        id_field: str,
        target_id: str,
        changed: dict[str, Any],
        updated_at: datetime,
        source: str,
        kind: str = "",
    ) -> str | None:
        """Queue an event (an update of the changed fields by default; kind contact.created or
        contact.deleted); return its event id (None when webhooks are off)."""
        kind = kind or ("contact.updated" if id_field == "crm_id" else "meeting.updated")
        if not self.config.webhook_urls or (not changed and kind.endswith(".updated")):
            return None
        event_id = "evt_" + secrets.token_hex(12)
        payload = {
            "event_id": event_id,
            "type": kind,
            id_field: target_id,
            "updated_fields": {key: json_value(value) for key, value in changed.items()},
            "timestamp": format_ts(updated_at),
            "source": source,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.queue.put_nowait(WebhookEvent(event_id, id_field, target_id, body))
        self.stats.webhooks_emitted += 1
        logger.info("webhook_queued", extra={"event_id": event_id, id_field: target_id, "source": source})
        return event_id

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Start a delivery task per queued event until cancelled, then cancel the ones in flight."""
        try:
            while True:
                event = await self.queue.get()
                delivery = deliver(session, self.config, self.stats, event, next(self._turns), self.prepare)
                task = asyncio.create_task(delivery)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            abandoned = self.queue.qsize() + len(self._tasks)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if abandoned:
                logger.info("webhooks_abandoned", extra={"count": abandoned})
