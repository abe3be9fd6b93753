"""HubSpot's v3 webhook signature: base64 HMAC-SHA256, keyed by the app secret, over method + URI + body + timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign_v3(app_secret: str, method: str, uri: str, body: str, timestamp: int | str) -> str:
    """Return the X-HubSpot-Signature-v3 value for one request (timestamp in epoch milliseconds)."""
    message = f"{method}{uri}{body}{timestamp}".encode()
    digest = hmac.new(app_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_v3(app_secret: str, method: str, uri: str, body: str, timestamp: int | str, signature: str) -> bool:
    """True when signature is the v3 signature of the request (compared in constant time)."""
    expected = sign_v3(app_secret, method, uri, body, timestamp)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass"))
