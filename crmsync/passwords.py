"""Salted scrypt password hashes, computed off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

_N, _R, _P, _LEN = 2**14, 8, 1, 32


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_LEN, maxmem=64 * 1024**2)


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


async def hash_password(password: str) -> str:
    """Return 'scrypt$n$r$p$salt$hash' for a new password."""
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_derive, password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${_encode(salt)}${_encode(digest)}"


# Verifying against this when the account does not exist keeps both failures equally slow.
_DUMMY = f"scrypt${_N}${_R}${_P}${_encode(b'0' * 16)}${_encode(b'0' * _LEN)}"


async def verify_password(password: str, stored: str | None) -> bool:
    """Check a password against a stored hash in constant time; None means 'no such account'."""
    scheme, n, r, p, salt, expected = (stored or _DUMMY).split("$")
    if scheme != "scrypt":
        return False
    digest = await asyncio.to_thread(_derive, password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(digest, base64.b64decode(expected)) and stored is not None
