"""Request-level retries: aiohttp-retry with jittered exponential backoff that honours Retry-After."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import parsedate_to_datetime
from types import SimpleNamespace

import aiohttp
from aiohttp_retry import ExponentialRetry

from ..metrics import Metrics
from ..timeutil import now_iso
from .attempts import Attempt
from .pacer import Pacer

# Every 5xx is retried by retry_all_server_errors; a 429 is waited out by Transport.request instead,
# so that waiting for the rate limit does not use up one of the attempts.
RETRY_STATUSES: set[int] = set()
RETRY_EXCEPTIONS = {aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError}


class JitteredBackoff(ExponentialRetry):
    """Exponential backoff with full jitter, or the server's Retry-After when it sends one.

    With a pacer, every retry also takes a slot of the rate budget (the first try took one before it was
    sent): a retry is a request like any other, and unpaced retries after 5xx push a cluster over the limit.
    """

    def __init__(self, attempts: int, base: float, max_wait: float = 30.0, pacer: Pacer | None = None) -> None:
        super().__init__(
            attempts=attempts,
            start_timeout=base,
            max_timeout=max_wait,
            statuses=RETRY_STATUSES,
            exceptions=RETRY_EXCEPTIONS,
        )
        self._base = base
        self._max_wait = max_wait
        self._pacer = pacer

    def get_timeout(self, attempt: int, response: aiohttp.ClientResponse | None = None) -> float:
        """Seconds to wait before the next try."""
        wait = self._backoff(attempt, response)
        if self._pacer is not None:
            if response is not None:
                self._pacer.observe(response.headers)
            wait = max(wait, self._pacer.reserve_after(wait))
        return wait

    def _backoff(self, attempt: int, response: aiohttp.ClientResponse | None) -> float:
        if response is not None:
            # aiohttp-retry drops the response it retries without releasing its connection.
            response.release()
            hinted = retry_after_seconds(response.headers.get("Retry-After"))
            if hinted is not None:
                return min(hinted, self._max_wait)
        ceiling = min(self._base * 2 ** (attempt - 1), self._max_wait)
        return random.uniform(ceiling / 2, ceiling)


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def attempt_tracer(metrics: Metrics | None = None) -> aiohttp.TraceConfig:
    """Record every try of a request into the list passed as trace_request_ctx['tries'], and count it."""
    trace = aiohttp.TraceConfig()

    async def on_start(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: object) -> None:
        ctx.started = time.perf_counter()
        ctx.started_at = now_iso()
        if metrics is not None and (ctx.trace_request_ctx or {}).get("current_attempt", 1) > 1:
            metrics.retries.labels("request").inc()

    def _store(ctx: SimpleNamespace, outcome: str, status: int | None, error: str | None) -> None:
        tries = (ctx.trace_request_ctx or {}).get("tries")
        if tries is None:
            return
        operation = ctx.trace_request_ctx.get("operation", "request")
        elapsed = round((time.perf_counter() - ctx.started) * 1000, 2)
        tries.append(Attempt(operation, ctx.started_at, now_iso(), elapsed, outcome, status, error))

    async def on_end(_: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        status = params.response.status
        outcome = "ok" if status < 400 else "rate_limited" if status == 429 else "http_error"
        _store(ctx, outcome, status, None)
        if metrics is not None:
            metrics.crm_requests.labels(str(status)).inc()
            if status == 429:
                metrics.rate_limited.inc()

    async def on_exception(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        _store(ctx, "network_error", None, describe_exception(params.exception))
        if metrics is not None:
            metrics.crm_requests.labels("error").inc()

    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


def describe_exception(exc: BaseException) -> str:
    """A short, secret-free description of a transport failure."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection dropped by the CRM"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection refused or unreachable"
    return type(exc).__name__
