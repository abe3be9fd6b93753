"""Access tokens: HS256 JWTs signed with a key that lives only as long as the process."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable

import jwt

ALGORITHM = "HS256"


def same_secret(given: str, expected: str) -> bool:
    """Compare two strings in constant time (any unicode, no TypeError)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class TokenIssuer:
    """Issues and verifies bearer tokens for the configured client."""

    def __init__(self, client_id: str, client_secret: str, ttl: int, clock: Callable[[], float] = time.time):
        """Make a fresh random signing key; tokens from an earlier run stop working."""
        self.key = secrets.token_bytes(32)
        self.ttl = ttl
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock

    def client_ok(self, client_id: str, client_secret: str) -> bool:
        """Return True when both credentials match (both compared, in constant time)."""
        id_ok = same_secret(client_id, self._client_id)
        secret_ok = same_secret(client_secret, self._client_secret)
        return id_ok and secret_ok

    def issue(self, client_id: str) -> tuple[str, str]:
        """Return (token, jti) for a client, valid for ttl seconds."""
        now = int(self._clock())
        jti = uuid.uuid4().hex
        claims = {"sub": client_id, "iat": now, "exp": now + self.ttl, "jti": jti}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), jti

    def verify(self, token: str) -> str:
        """Return the client id (sub) of a valid, unexpired token, or raise jwt.InvalidTokenError."""
        claims = jwt.decode(
            token,
            self.key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "jti"]},
        )
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise jwt.InvalidTokenError("sub must be a non-empty string")
        return sub
