"""Standard Webhooks signatures: HMAC-SHA256 over "{id}.{timestamp}.{body}", keys in whsec_ form."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

TOLERANCE_SECONDS = 5 * 60


class SignatureError(Exception):
    """The request is not provably from the CRM; the message says why, without secrets."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside 'whsec_<base64>' (a bare base64 key is accepted too)."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret must be whsec_ followed by base64") from None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The v1 signature header value for one key."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """Check id, timestamp and signature on the raw body; return the message id or raise SignatureError."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not stamp or not signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not (msg_id.isascii() and stamp.isascii() and signatures.isascii()):
        raise SignatureError("webhook headers must be ASCII")
    if len(msg_id) > 256:
        raise SignatureError("webhook-id is too long")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now")
    offered = [s.encode() for s in signatures.split(" ") if s.startswith("v1,")]
    # Every key is tried against every signature in constant time: rotation keeps old and new valid.
    matched = False
    for key in keys:
        expected = sign(key, msg_id, timestamp, body).encode()
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches")
    return msg_id
