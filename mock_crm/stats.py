"""Counters the tests (and GET /crm/_admin/stats) read to see what the mock CRM went through."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs


@attrs.define
class Delivery:
    """The outcome of one webhook event after its last attempt."""

    event_id: str
    target_id: str
    outcome: str  # "delivered" or "failed"
    attempts: int
    status: int | None  # last HTTP status, None after a timeout or connection error


@attrs.define
class Stats:
    """Request, token, fault and webhook counters for one app."""

    calls: Counter[str] = attrs.Factory(Counter)  # "PATCH /crm/users/{crm_id}" -> requests received
    responses: Counter[int] = attrs.Factory(Counter)  # status -> responses sent
    tokens_issued: int = 0
    rate_limited: int = 0
    injected_failures: int = 0
    lost_replies: int = 0  # writes applied whose reply became a 500 or a dropped connection
    dropped_connections: int = 0  # the part of lost_replies closed without any response
    garbled_replies: int = 0  # successful replies sent with a broken body (garble_next)
    webhooks_emitted: int = 0
    webhook_attempts: int = 0
    webhook_attempts_by_url: Counter[str] = attrs.Factory(Counter)  # URL -> delivery attempts sent there
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    deliveries: list[Delivery] = attrs.Factory(list)

    @property
    def webhooks_pending(self) -> int:
        """Events emitted but not yet delivered or given up on."""
        return self.webhooks_emitted - self.webhooks_delivered - self.webhooks_failed

    def to_json(self) -> dict[str, Any]:
        """Return the counters as a JSON-ready dict."""
        data = attrs.asdict(self, filter=lambda attribute, _: attribute.name != "deliveries")
        data["deliveries"] = [attrs.asdict(delivery) for delivery in self.deliveries[-100:]]
        data["responses"] = {str(status): count for status, count in self.responses.items()}
        data["calls"] = dict(self.calls)
        data["webhook_attempts_by_url"] = dict(self.webhook_attempts_by_url)
        data["webhooks_pending"] = self.webhooks_pending
        return data
