"""The transport every CRM adapter shares: one ClientSession, retries, OAuth tokens, pacing, the attempt record."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import attrs
from aiohttp_retry import RetryClient
from yarl import URL

from .attempts import Attempt
from .errors import CrmUnavailable
from .health import CrmHealth
from .pacer import Pacer, RateLimitReader
from .retry import JitteredBackoff, describe_exception, retry_after_seconds
from .tokens import StaticToken, TokenManager
from .types import Throttled

logger = logging.getLogger(__name__)

MIN_RATE_PAUSE = 0.1  # a Retry-After of 0 (or in the past) must not turn into a busy loop
HOLD_SLACK = 60.0  # daily 429s met by requests in flight together name one hold, not several
LOCKED_PAUSE = 2.0  # a 423 (the CRM is busy with the record) is waited out at least this long
ReadThrottle = Callable[[Any, Mapping[str, str]], Throttled]
_NOT_JSON = object()


@attrs.frozen
class TokenRequest:
    """How this CRM issues an OAuth 2.0 access token: the form posted to its token endpoint."""

    path: str
    form: dict[str, str] = attrs.field(repr=False)
    headers: dict[str, str] = attrs.field(factory=dict, repr=False)
    settings: str = "CRMSYNC_CRM_CLIENT_ID/SECRET"  # named when the CRM refuses them


class Transport:
    """Sends authorised, paced, retried requests to one CRM; a failure to get an answer raises CrmUnavailable.

    What the requests say and what the answers mean is the adapter's business, not this module's.
    """

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, auth: TokenRequest | str, rate_limits: RateLimitReader,
        attempts: int = 3, backoff: float = 0.5, max_rate_wait: float = 60.0, token_timeout: float = 5.0,
        throttle: ReadThrottle | None = None,
    ) -> None:  # fmt: skip
        """auth is how tokens are had: an OAuth token request, or a static token sent as it is."""
        self._base = URL(base_url)
        self._attempts = attempts
        self._http = RetryClient(client_session=session, retry_options=JitteredBackoff(attempts, backoff))
        self.health = CrmHealth()
        if isinstance(auth, TokenRequest):
            self._token_request = auth
            self.tokens: TokenManager | StaticToken = TokenManager(
                self._fetch_token, token_timeout, self.health, auth.settings
            )
        else:
            self.tokens = StaticToken(auth)
        self.pacer = Pacer(rate_limits)
        self._paced_retries = JitteredBackoff(attempts, backoff, pacer=self.pacer)
        self._paced_once = JitteredBackoff(1, backoff, pacer=self.pacer)
        self._max_rate_wait = max_rate_wait
        self._throttle = throttle
        self._first_contact = asyncio.Lock()  # held by the one request in flight until the limit is known
        self.held_until = 0.0  # monotonic: a daily limit is spent, nothing is sent before then
        self.held_reason = ""
        self.rate_limited = 0  # 429s seen, for metrics and benchmarks

    async def _fetch_token(self) -> tuple[int, dict[str, Any]]:
        # The token manager judges the answer and records it in self.health.
        asked = self._token_request
        status, body, _ = await self._send(
            "POST", asked.path, operation="token", paced=False, track=False, data=asked.form, headers=asked.headers
        )
        return status, body

    async def _send(
        self,
        method: str,
        path: str,
        tries: list[Attempt] | None = None,
        operation: str = "",
        paced: bool = True,
        track: bool = True,
        retry: bool = True,
        **kwargs: Any,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """One request with its retries (none when retry is False); every outcome is recorded in self.health
        unless track is False.

        Until a first reply has said what the CRM's limit is, paced requests go one at a time: otherwise every
        worker's first request goes out at once, a burst over a small limit before the pacer knows it.
        """
        if not paced or self.pacer.heard:
            return await self._exchange(method, path, tries, operation, paced, track, retry, **kwargs)
        async with self._first_contact:
            return await self._exchange(method, path, tries, operation, paced, track, retry, **kwargs)

    async def _exchange(
        self, method: str, path: str, tries: list[Attempt] | None, operation: str, paced: bool, track: bool,
        retry: bool, **kwargs: Any,
    ) -> tuple[int, Any, Mapping[str, str]]:  # fmt: skip
        if paced:
            await self.pacer.wait()
        operation = operation or method
        context = {"tries": tries, "operation": operation}
        try:
            retries = (self._paced_retries if retry else self._paced_once) if paced else None
            async with self._http.request(
                method, self._base.with_path(path), retry_options=retries, trace_request_ctx=context, **kwargs
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = describe_exception(exc)
            message = f"The CRM could not be reached after {self._attempts} attempts ({reason})."
            raise self._failed(message, None, track) from None
        if paced:
            self.pacer.observe(headers)
        if status >= 500:
            raise self._failed(f"The CRM could not be reached after {self._attempts} attempts (HTTP {status}).",
                               status, track)  # fmt: skip
        body = _parse(raw)
        if body is _NOT_JSON and 200 <= status < 300:
            # Garbled, not refused: the write may have been applied, so this is retried like a 5xx.
            what = {"list": "listing", "token": "token request"}.get(operation, operation.replace("_", " "))
            raise self._failed(f"The CRM answered the {what} with a body that is not JSON.", status, track)
        if track:
            self.health.succeeded()
        return status, ({} if body is _NOT_JSON else body), headers

    def _failed(self, message: str, status: int | None, track: bool) -> CrmUnavailable:
        if track:
            self.health.failed(message)
        return CrmUnavailable(message, status)

    async def request(
        self, method: str, path: str, tries: list[Attempt] | None = None, operation: str = "", retry: bool = True,
        **kwargs: Any,
    ) -> tuple[int, Any]:  # fmt: skip
        """Send an authorised, paced request (retried on failures unless retry is False: a create the CRM
        cannot recognise when repeated).

        A 401 gets one fresh token and one more try. A 429 (and a 423, at least 2 s) is waited out (every
        worker pauses) and sent again without using up a retry, until max_rate_wait seconds of waiting in
        all. A 429 the adapter reads as a spent daily limit holds every request until its reset.
        """
        headers = dict(kwargs.pop("headers", {}))
        refreshed, waited = False, 0.0
        while True:
            if self.held_for() > 0:
                raise CrmUnavailable(self.held_reason, 429)
            token = await self.tokens.get()
            headers["Authorization"] = f"Bearer {token}"
            status, body, reply = await self._send(method, path, tries, operation, retry=retry, headers=headers,
                                                   **kwargs)  # fmt: skip
            if status == 401 and not refreshed:
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if status == 401:
                raise self._failed("The CRM kept refusing our access token.", 401, True)
            if status not in (423, 429):
                return status, body
            pause = self._pause_for(status, body, reply, operation)
            waited += pause
            if waited > self._max_rate_wait:
                raise self._failed(f"The CRM kept rate-limiting us for over {self._max_rate_wait:.0f} s.", status, True)
            logger.info("crm_rate_limited", extra={"operation": operation, "retry_after": pause, "status": status})
            self.pacer.pause(pause)

    def held_for(self) -> float:
        """Seconds until a spent daily limit resets (0 when none is spent)."""
        return max(0.0, self.held_until - time.monotonic())

    def _pause_for(self, status: int, body: Any, reply: Mapping[str, str], operation: str) -> float:
        """How long to wait before sending again; a spent daily limit raises CrmUnavailable instead."""
        hinted = retry_after_seconds(reply.get("Retry-After"))
        if status == 423:
            return max(hinted or 0.0, LOCKED_PAUSE)
        self.rate_limited += 1
        if self._throttle is not None:
            meaning = self._throttle(body, reply)
            if meaning.daily:
                until = time.monotonic() + meaning.wait_seconds
                if until > self.held_until + HOLD_SLACK:  # a new hold, not the one another request just met
                    self.held_until = until
                    hours, minutes = divmod(round(meaning.wait_seconds / 60), 60)
                    self.held_reason = (f"The CRM's daily request limit is spent; syncing resumes when it resets "
                                        f"(in {hours} h {minutes:02d} min).")  # fmt: skip
                    facts = {"operation": operation, "policy": meaning.policy,
                             "resumes_in_seconds": round(meaning.wait_seconds)}  # fmt: skip
                    logger.error("crm_daily_limit_spent", extra=facts)
                raise self._failed(self.held_reason, 429, True)
            return max(meaning.wait_seconds, MIN_RATE_PAUSE)
        return 1.0 if hinted is None else max(hinted, MIN_RATE_PAUSE)


def _parse(raw: bytes) -> Any:
    """The JSON in a reply body ({} when empty), or _NOT_JSON."""
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return _NOT_JSON
