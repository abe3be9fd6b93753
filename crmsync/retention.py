"""Keeps webhook_events bounded: a background task deletes events older than the retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from .keys import config_key, db_key
from .store import webhook_events
from .store.database import Database
from .store.errors import StoreError
from .timeutil import isoformat, utcnow

logger = logging.getLogger(__name__)

FIRST_RUN_DELAY = 60.0  # the first minute after start-up belongs to the re-queued jobs


async def prune_once(db: Database, retention: float) -> int:
    """Delete every event received more than `retention` seconds ago; log the count when any went."""
    before = isoformat(utcnow() - timedelta(seconds=retention))
    pruned = await webhook_events.prune(db, before)
    if pruned:
        logger.info("webhook_events_pruned", extra={"count": pruned, "received_before": before})
    return pruned


async def prune_forever(db: Database, retention: float, interval: float) -> None:
    """Prune soon after start-up, then every `interval` seconds; a failed round is tried again next time."""
    delay = min(interval, FIRST_RUN_DELAY)
    while True:
        await asyncio.sleep(delay)
        delay = interval
        try:
            await prune_once(db, retention)
        except StoreError as exc:
            logger.warning("webhook_prune_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        except Exception:  # a bug must not end retention for the life of the process
            logger.exception("webhook_prune_crashed")


async def retention_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the periodic prune, unless the retention is 0 (keep events forever)."""
    config = app[config_key]
    task = None
    if config.webhook_retention > 0 and config.webhook_prune_interval > 0:
        task = asyncio.create_task(prune_forever(app[db_key], config.webhook_retention, config.webhook_prune_interval))
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
