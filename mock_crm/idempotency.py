"""Idempotency keys: remember each successful create per (client, kind, key) and replay it."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from mock_crm.errors import IdempotencyKeyReused, InvalidJson, InvalidRequest
from mock_crm.validation import check_key

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
Scope = tuple[str, str, str]  # (client_id, kind, key)


@attrs.frozen
class Outcome:
    """A stored response: status and JSON body."""

    status: int
    body: dict[str, Any]
    fingerprint: str
    stored_at: float


def fingerprint(body: Any) -> str:
    """Hash a parsed JSON body so equal bodies (in any key order) compare equal."""
    try:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except RecursionError:
        raise InvalidJson("The request body is nested too deeply.") from None
    return hashlib.sha256(canonical.encode()).hexdigest()


def header_key(request: web.Request) -> str | None:
    """Return the request's Idempotency-Key, None if absent, or raise InvalidRequest if malformed."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    try:
        return check_key(raw)
    except ValueError as exc:
        raise InvalidRequest(f"The {HEADER} header {exc}.") from None


class IdempotencyCache:
    """Stored outcomes, oldest first, purged once older than ttl seconds."""

    def __init__(self, ttl: float = 24 * 3600, clock: Callable[[], float] = time.monotonic) -> None:
        """Keep outcomes for at least ttl seconds."""
        self.ttl = ttl
        self._clock = clock
        self._outcomes: OrderedDict[Scope, Outcome] = OrderedDict()

    def __len__(self) -> int:
        """Number of keys held."""
        return len(self._outcomes)

    def lookup(self, scope: Scope, print_: str) -> Outcome | None:
        """Return the stored outcome for an equal body, None if new, or raise IdempotencyKeyReused."""
        self._purge()
        outcome = self._outcomes.get(scope)
        if outcome is None:
            return None
        if outcome.fingerprint != print_:
            raise IdempotencyKeyReused()
        return outcome

    def store(self, scope: Scope, print_: str, status: int, body: dict[str, Any]) -> None:
        """Remember an outcome for replay."""
        self._outcomes[scope] = Outcome(status, body, print_, self._clock())

    def _purge(self) -> None:
        """Drop outcomes older than ttl (they are in insertion order)."""
        limit = self._clock() - self.ttl
        while self._outcomes:
            scope, oldest = next(iter(self._outcomes.items()))
            if oldest.stored_at >= limit:
                break
            del self._outcomes[scope]
