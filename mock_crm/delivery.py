"""Deliver one webhook event: signed POSTs, retried with exponential backoff on transient failures.

With several webhook URLs (replicas of the receiver) each attempt goes to the next one in turn, as a
round-robin load balancer would send it: a delivery that failed is retried at another URL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
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

# Builds one attempt's (headers, body) from the event, the URL and the attempt number (from 1): a dialect
# whose signature covers the URL, or whose body counts attempts, passes its own.
Prepare = Callable[["WebhookEvent", str, int], tuple[dict[str, str], bytes]]


async def deliver(
    session: aiohttp.ClientSession,
    config: MockConfig,
    stats: Stats,
    event: WebhookEvent,
    turn: int = 0,
    prepare: Prepare | None = None,
) -> None:
    """POST the event until a 2xx, a non-retryable 4xx, or webhook_attempts tries; the first try goes to
    the turn-th URL (modulo their number), each retry to the next."""
    status: int | None = None
    urls = config.webhook_urls
    for attempt in range(1, config.webhook_attempts + 1):
        url = urls[(turn + attempt - 1) % len(urls)]
        headers, body = (prepare or _standard(config))(event, url, attempt)
        status, retry_after, error = await _attempt(session, url, headers, body)
        stats.webhook_attempts += 1
        stats.webhook_attempts_by_url[url] += 1
        ids = {"event_id": event.event_id, event.id_field: event.target_id, "attempt": attempt, "status": status,
               "url": url}  # fmt: skip
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


def _standard(config: MockConfig) -> Prepare:
    """The mock dialect: Standard Webhooks headers over the event's fixed body."""

    def prepare(event: WebhookEvent, _url: str, _attempt: int) -> tuple[dict[str, str], bytes]:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(config.webhook_secret, event.event_id, timestamp, event.body),
        }
        return headers, event.body

    return prepare


async def _attempt(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
) -> tuple[int | None, float | None, str | None]:
    """Send one signed POST; return (status, Retry-After seconds, error text)."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
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
