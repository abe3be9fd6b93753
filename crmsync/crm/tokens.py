"""OAuth 2.0 client-credentials tokens, cached and refreshed by one bounded fetch at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import CrmUnavailable
from .health import CrmHealth

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


class TokenManager:
    """Hands out a valid access token; every waiter shares one fetch and learns its outcome at once."""

    def __init__(
        self, fetch: Fetch, timeout: float, health: CrmHealth, settings: str = "CRMSYNC_CRM_CLIENT_ID/SECRET"
    ) -> None:
        self._fetch = fetch
        self._settings = settings  # what to check when the CRM refuses the credentials
        self._timeout = timeout
        self._health = health
        self._token: str | None = None
        self._refresh_at = 0.0
        self._pending: asyncio.Task[str] | None = None

    async def get(self) -> str:
        """Return the cached token, fetching a new one when it is missing or about to expire."""
        if self._token is not None and time.monotonic() < self._refresh_at:
            return self._token
        if self._pending is None:
            self._pending = asyncio.create_task(self._refresh(), name="crm-token")
            self._pending.add_done_callback(self._settled)
        # Shielded: a waiter that gives up (a bounded readiness check) must not cancel the others' fetch.
        return await asyncio.shield(self._pending)

    async def close(self) -> None:
        """Stop a fetch still running (at shutdown, before the HTTP session closes)."""
        if self._pending is not None:
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)

    def invalidate(self, token: str) -> None:
        """Forget a token the CRM refused, unless another caller already replaced it."""
        if self._token == token:
            self._token = None

    def _settled(self, task: asyncio.Task[str]) -> None:
        self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved, so a fetch whose waiters all left is not reported as unhandled

    async def _refresh(self) -> str:
        try:
            # The whole fetch, its retries included, is bounded: a hanging endpoint must not stall the workers.
            async with asyncio.timeout(self._timeout):
                status, body = await self._fetch()
        except TimeoutError:
            raise self._failed(f"The CRM's token endpoint did not answer within {self._timeout:g} s.") from None
        except CrmUnavailable as exc:
            raise self._failed(exc.message, exc.status) from None
        body = body if isinstance(body, dict) else {}
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if status != 200 or not isinstance(token, str) or not isinstance(expires_in, int | float):
            if status in (400, 401):
                raise self._failed(f"The CRM refused our client credentials; check {self._settings}.", status, body)
            raise self._failed(f"The CRM did not issue an access token (HTTP {status}).", status, body)
        # Refresh a little early so a token never expires in flight; short-lived tokens refresh at 90 %.
        self._refresh_at = time.monotonic() + expires_in - min(30.0, expires_in * 0.1)
        self._token = token
        self._health.succeeded()
        logger.info("crm_token_refreshed", extra={"expires_in": expires_in})
        return token

    def _failed(self, message: str, status: int | None = None, body: dict[str, Any] | None = None) -> CrmUnavailable:
        self._health.failed(message)
        # Refused credentials need a person; anything else is retried with the jobs that wait for a token.
        level = logging.ERROR if status in (400, 401) else logging.WARNING
        logger.log(level, "crm_token_failed", extra={"status": status, "error": (body or {}).get("error"),
                                                     "reason": message})  # fmt: skip
        return CrmUnavailable(message, status)


class StaticToken:
    """A token that does not expire (HubSpot's private app tokens): handed out as it is, never fetched."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get(self) -> str:
        """The token."""
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to do: a refused static token stays refused, and the transport says so."""

    async def close(self) -> None:
        """Nothing runs."""
