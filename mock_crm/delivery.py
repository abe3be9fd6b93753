"""Deliver one webhook event: signed POSTs, retried with exponential backoff on transient failures."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import aiohttp

from mock_crm.config import MockConfig
from mock_crm.signing import sign
from mock_crm.stats import Delivery, Stats

if TYPE_CHECKING:
    from mock_crm.webhooks import WebhookEvent

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({404, 409, 429})
MAX_DELAY = 30.0


async def deliver(session: aiohttp.ClientSession, config: MockConfig, stats: Stats, event: WebhookEvent) -> None:
    """POST the event until a 2xx, a non-retryable 4xx, or webhook_attempts tries."""
    status: int | None = None
    for attempt in range(1, config.webhook_attempts + 1):
        status, retry_after, error = await _attempt(session, config, event)
        stats.webhook_attempts += 1
        ids = {"event_id": event.event_id, event.id_field: event.target_id, "attempt": attempt, "status": status}
        if status is not None and 200 <= status < 300:
            stats.webhooks_delivered += 1
            stats.deliveries.append(Delivery(event.event_id, event.target_id, "delivered", attempt, status))
            logger.info("webhook_delivered", extra=ids)
            return
        retryable = status is None or status >= 500 or status in RETRY_STATUSES
        if not retryable or attempt == config.webhook_attempts:
            break
        backoff = config.webhook_backoff * 2 ** (attempt - 1)
        delay = min(MAX_DELAY, retry_after if retry_after is not None else backoff)
        logger.warning("webhook_retry", extra={**ids, "error": error, "delay": round(delay, 3)})
        await asyncio.sleep(delay)
    stats.webhooks_failed += 1
    stats.deliveries.append(Delivery(event.event_id, event.target_id, "failed", attempt, status))
    logger.error("webhook_failed", extra={**ids, "error": error})


async def _attempt(
    session: aiohttp.ClientSession, config: MockConfig, event: WebhookEvent
) -> tuple[int | None, float | None, str | None]:
    """Send one signed POST; return (status, Retry-After seconds, error text)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(config.webhook_secret, event.event_id, timestamp, event.body),
    }
    try:
        async with session.post(config.webhook_url, data=event.body, headers=headers) as response:
            return response.status, _retry_after(response.headers.get("Retry-After")), None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, None, f"{type(exc).__name__}: {exc}"


def _retry_after(value: str | None) -> float | None:
    """Parse Retry-After (seconds or an HTTP date) into seconds from now, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - time.time())
