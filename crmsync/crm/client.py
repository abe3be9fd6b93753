"""The CRM's contact API over one ClientSession, with retries, token handling and typed failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp_retry import RetryClient
from yarl import URL

from .attempts import Attempt
from .errors import CrmDuplicate, CrmEmailTaken, CrmNotFound, CrmStale, CrmUnavailable
from .health import CrmHealth
from .pacer import Pacer
from .records import Record, batch_item, expect, record
from .retry import JitteredBackoff, describe_exception, retry_after_seconds
from .tokens import TokenManager

logger = logging.getLogger(__name__)

MIN_RATE_PAUSE = 0.1  # a Retry-After of 0 (or in the past) must not turn into a busy loop
_NOT_JSON = object()


class CrmClient:
    """Calls the CRM; every method raises a CrmError subclass instead of returning a failure."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, client_id: str, client_secret: str,
        attempts: int = 3, backoff: float = 0.5, max_rate_wait: float = 60.0, token_timeout: float = 5.0,
    ) -> None:  # fmt: skip
        self._base = URL(base_url)
        self._basic = aiohttp.encode_basic_auth(client_id, client_secret)
        self._attempts = attempts
        self._http = RetryClient(client_session=session, retry_options=JitteredBackoff(attempts, backoff))
        self.health = CrmHealth()
        self.tokens = TokenManager(self._fetch_token, token_timeout, self.health)
        self.pacer = Pacer()
        self._max_rate_wait = max_rate_wait
        self.rate_limited = 0  # 429s seen, for metrics and benchmarks

    async def _fetch_token(self) -> tuple[int, dict[str, Any]]:
        # The token manager judges the answer and records it in self.health.
        status, body, _ = await self._send(
            "POST",
            "/crm/token",
            operation="token",
            paced=False,
            track=False,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self._basic},
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
        **kwargs: Any,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """One request with its retries; every outcome is recorded in self.health unless track is False."""
        if paced:
            await self.pacer.wait()
        operation = operation or method
        context = {"tries": tries, "operation": operation}
        try:
            async with self._http.request(
                method, self._base.with_path(path), trace_request_ctx=context, **kwargs
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
        self, method: str, path: str, tries: list[Attempt] | None = None, operation: str = "", **kwargs: Any
    ) -> tuple[int, Any]:
        """Send an authorised, paced request.

        A 401 gets one fresh token and one more try. A 429 is waited out (every worker pauses) and
        sent again without using up a retry, until max_rate_wait seconds of waiting in all.
        """
        headers = dict(kwargs.pop("headers", {}))
        refreshed, waited = False, 0.0
        while True:
            token = await self.tokens.get()
            headers["Authorization"] = f"Bearer {token}"
            status, body, reply = await self._send(method, path, tries, operation, headers=headers, **kwargs)
            if status == 401 and not refreshed:
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if status == 401:
                raise self._failed("The CRM kept refusing our access token.", 401, True)
            if status != 429:
                return status, body
            hinted = retry_after_seconds(reply.get("Retry-After"))
            pause = 1.0 if hinted is None else max(hinted, MIN_RATE_PAUSE)
            waited += pause
            self.rate_limited += 1
            if waited > self._max_rate_wait:
                raise self._failed(f"The CRM kept rate-limiting us for over {self._max_rate_wait:.0f} s.", 429, True)
            logger.info("crm_rate_limited", extra={"operation": operation, "retry_after": pause})
            self.pacer.pause(pause)

    async def create_user(self, fields: dict[str, str], idempotency_key: str, tries: list[Attempt]) -> Record:
        """Create a contact; a 409 becomes CrmDuplicate carrying the existing crm_id."""
        status, body = await self.request(
            "POST", "/crm/users", tries, "create", json=fields, headers={"Idempotency-Key": idempotency_key}
        )
        if status == 409 and isinstance(body, dict) and isinstance(body.get("crm_id"), str):
            raise CrmDuplicate(body["crm_id"])
        return record(status, body, 201)

    async def create_users(
        self, items: list[tuple[dict[str, str], str]], tries: list[Attempt]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Create up to 100 contacts in one request; return (status, body) per item, in order."""
        payload = {"items": [{**fields, "idempotency_key": key} for fields, key in items]}
        status, body = await self.request("POST", "/crm/users/batch", tries, "batch_create", json=payload)
        results = expect(status, body, 200, "batch").get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise CrmUnavailable("The CRM answered the batch with a malformed result list.", status)
        return [batch_item(result) for result in results]

    async def update_user(
        self, crm_id: str, fields: dict[str, str], tries: list[Attempt], version: str | None = None
    ) -> Record:
        """Change some fields of a contact; with a version, only if the record is still at that version."""
        headers = {"If-Match": f'"{version}"'} if version else {}
        status, body = await self.request(
            "PATCH", f"/crm/users/{crm_id}", tries, "update", json=fields, headers=headers
        )
        if status == 404:
            raise CrmNotFound(crm_id)
        if status == 412:
            raise CrmStale(crm_id)
        if status == 409 and isinstance(body, dict) and isinstance(body.get("crm_id"), str):
            raise CrmEmailTaken(body["crm_id"])
        return record(status, body, 200)

    async def delete_user(self, crm_id: str, tries: list[Attempt]) -> None:
        """Delete a contact; CrmNotFound when the CRM has no such record."""
        status, body = await self.request("DELETE", f"/crm/users/{crm_id}", tries, "delete")
        if status == 404:
            raise CrmNotFound(crm_id)
        if status != 204:
            expect(status, body, 204, "delete")

    async def get_user(self, crm_id: str, tries: list[Attempt] | None = None) -> Record:
        """Read a contact."""
        status, body = await self.request("GET", f"/crm/users/{crm_id}", tries, "read")
        if status == 404:
            raise CrmNotFound(crm_id)
        return record(status, body, 200)

    async def list_users(
        self, updated_since: str | None, cursor: str | None, limit: int = 100
    ) -> tuple[list[Record], str | None]:
        """One page of contacts changed after updated_since, oldest change first, and the next cursor."""
        params = {"limit": str(limit)}
        if updated_since:
            params["updated_since"] = updated_since
        if cursor:
            params["cursor"] = cursor
        status, body = await self.request("GET", "/crm/users", None, "list", params=params)
        page = expect(status, body, 200, "listing")
        items = page.get("items")
        return (items if isinstance(items, list) else []), page.get("next_cursor")


def _parse(raw: bytes) -> Any:
    """The JSON in a reply body ({} when empty), or _NOT_JSON."""
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return _NOT_JSON
