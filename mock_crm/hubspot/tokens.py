"""Bearer tokens: the configured static token, and OAuth access tokens handed out for the refresh token."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from enum import Enum

from mock_crm.tokens import same_secret


class TokenState(Enum):
    """What a presented bearer token is."""

    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class AccessTokens:
    """The static token (never expires) and issued access tokens with their expiry times."""

    def __init__(self, static_token: str, ttl: int, clock: Callable[[], float] = time.time) -> None:
        """Accept static_token always; issued tokens live ttl seconds."""
        self._static = static_token
        self.ttl = ttl
        self._clock = clock
        self._issued: dict[str, float] = {}  # token -> expiry (wall clock)

    def issue(self) -> str:
        """Return a new access token, valid for ttl seconds."""
        token = "CO" + secrets.token_urlsafe(32)  # HubSpot's access tokens are opaque strings
        self._issued[token] = self._clock() + self.ttl
        return token

    def check(self, token: str) -> TokenState:
        """Classify a presented token (the static one compared in constant time)."""
        if same_secret(token, self._static):
            return TokenState.VALID
        expiry = self._issued.get(token)
        if expiry is None:
            return TokenState.UNKNOWN
        return TokenState.VALID if self._clock() < expiry else TokenState.EXPIRED

    def expire_all(self) -> int:
        """Make every issued access token expired now (an admin switch); return how many."""
        now = self._clock()
        for token in self._issued:
            self._issued[token] = min(self._issued[token], now)
        return len(self._issued)

    @property
    def issued(self) -> int:
        """How many access tokens were handed out."""
        return len(self._issued)
