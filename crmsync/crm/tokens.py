"""OAuth 2.0 client-credentials tokens, cached and refreshed by one request at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import CrmUnavailable

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


class TokenManager:
    """Hands out a valid access token; many waiters share one refresh."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """Return the cached token, fetching a new one when it is missing or about to expire."""
        if self._token is not None and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                await self._refresh()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget a token the CRM refused, unless another caller already replaced it."""
        if self._token == token:
            self._token = None

    async def _refresh(self) -> None:
        status, body = await self._fetch()
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if status != 200 or not isinstance(token, str) or not isinstance(expires_in, int | float):
            logger.error("crm_token_failed", extra={"status": status, "error": body.get("error")})
            if status in (400, 401):
                raise CrmUnavailable("The CRM refused our client credentials; check CRMSYNC_CRM_CLIENT_ID/SECRET.")
            raise CrmUnavailable(f"The CRM did not issue an access token (HTTP {status}).", status)
        # Refresh a little early so a token never expires in flight; short-lived tokens refresh at 90 %.
        self._refresh_at = time.monotonic() + expires_in - min(30.0, expires_in * 0.1)
        self._token = token
        logger.info("crm_token_refreshed", extra={"expires_in": expires_in})
