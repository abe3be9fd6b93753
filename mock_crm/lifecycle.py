"""Cleanup contexts: the one HTTP client session, then the webhook dispatcher that uses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

import aiohttp
from aiohttp import web

from mock_crm import keys


async def http_session(app: web.Application) -> AsyncIterator[None]:
    """Own the app's ClientSession (with a timeout) for as long as the app runs."""
    timeout = aiohttp.ClientTimeout(total=app[keys.config].webhook_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[keys.http] = session
        yield


async def webhook_worker(app: web.Application) -> AsyncIterator[None]:
    """Run the webhook dispatcher in the background; cancel it (and its deliveries) on shutdown."""
    task = asyncio.create_task(app[keys.webhooks].run(app[keys.http]))
    app[keys.webhook_task] = task
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
