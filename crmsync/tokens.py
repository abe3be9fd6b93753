"""Account JWTs: HS256 only, with an expiry, verified with the algorithm pinned."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import jwt

from .errors import Unauthorized
from .timeutil import utcnow

ALGORITHM = "HS256"


def issue_token(secret: str, account_id: str, ttl_seconds: float) -> tuple[str, datetime]:
    """Return (token, expires_at) for an account."""
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    claims = {"sub": account_id, "iat": now, "exp": expires_at, "iss": "crmsync"}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires_at


def verify_token(secret: str, token: str) -> str:
    """Return the account id in a valid token, or raise Unauthorized without echoing the token."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer="crmsync",
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired; sign in again at POST /authenticate.") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is invalid.") from None
    subject = claims["sub"]
    try:
        return str(uuid.UUID(subject))  # account ids are UUIDs; anything else is not one of ours
    except (TypeError, ValueError, AttributeError):
        raise Unauthorized("The token is invalid.") from None


def token_from_header(value: str | None) -> str:
    """Accept 'Bearer <token>' and, as the seed's curl examples send it, a bare token."""
    if not value or not value.strip():
        raise Unauthorized("Send an Authorization: Bearer <token> header; get a token at POST /authenticate.")
    parts = value.strip().split()
    token = parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else parts[0] if len(parts) == 1 else ""
    if not token or not token.isascii():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token


def expires_at(token: str) -> float:
    """The exp claim of a token already verified (Unix seconds)."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])
