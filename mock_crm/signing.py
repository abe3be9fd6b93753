"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256>` over "{id}.{timestamp}.{body}"."""

from __future__ import annotations

import base64
import hashlib
import hmac

from mock_crm.config import webhook_key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the webhook-signature value for a message, keyed by the whsec_ secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
