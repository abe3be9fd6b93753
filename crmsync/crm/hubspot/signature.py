"""HubSpot's webhook signature v3: HMAC-SHA256 of method + URI + raw body + timestamp, base64, 5-minute window."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from ...signatures import SignatureError

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
TOLERANCE_MS = 5 * 60 * 1000


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The signature HubSpot sends for this request: the app's client secret is the key; uri is the full URL."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_v3(
    secrets: Sequence[str], method: str, uri: str, body: bytes, headers: Mapping[str, str], now_ms: float | None = None
) -> None:
    """Raise SignatureError unless the request carries a v3 signature by one of the secrets, made within 5 minutes.

    The timestamp (milliseconds since the epoch) is refused when more than 5 minutes away from now in either
    direction: a stamp from the future would let a captured request be replayed for longer. Every secret is
    compared in constant time, so a rotation can keep the old and the new one valid.
    """
    offered, stamp = headers.get(SIGNATURE_HEADER, ""), headers.get(TIMESTAMP_HEADER, "")
    if not offered or not stamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    if not (offered.isascii() and stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        raise SignatureError(f"{TIMESTAMP_HEADER} must be milliseconds since the epoch, and the signature ASCII")
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    if abs(now_ms - int(stamp)) > TOLERANCE_MS:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than 5 minutes away from now")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign_v3(secret, method, uri, body, stamp).encode(), offered.encode())
    if not matched:
        raise SignatureError("no signature matches")
