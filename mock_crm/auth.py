"""OAuth 2.0 client-credentials token endpoint (RFC 6749 §4.4) and the bearer-token middleware."""

from __future__ import annotations

import base64
import logging
from typing import Any

import jwt
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from mock_crm import keys
from mock_crm.areas import Area, area_of
from mock_crm.bodies import read_json
from mock_crm.errors import ApiError, InvalidJson, InvalidToken
from mock_crm.faults import hold_token_request

logger = logging.getLogger(__name__)

_NO_CACHE = {hdrs.CACHE_CONTROL: "no-store", hdrs.PRAGMA: "no-cache"}
_BASIC_CHALLENGE = {hdrs.WWW_AUTHENTICATE: 'Basic realm="crm"'}


class OAuthError(ApiError):
    """An RFC 6749 §5.2 error, with error_description alongside our message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        """Set status and code per instance."""
        super().__init__(message, headers=headers, error_description=message)
        self.status, self.code = status, code


async def _form_fields(request: web.Request) -> dict[str, str]:
    """Read a urlencoded or JSON token request into single string values, or raise invalid_request."""
    if request.content_type == "application/json":
        try:
            body: Any = await read_json(request)
        except InvalidJson as exc:
            raise OAuthError(400, "invalid_request", exc.message) from None
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise OAuthError(400, "invalid_request", "The JSON body must be an object of strings.")
        return body
    if request.content_type not in ("application/x-www-form-urlencoded", "application/octet-stream"):
        raise OAuthError(400, "invalid_request", "Send the form as application/x-www-form-urlencoded.")
    try:
        form = await request.post()
    except (ValueError, LookupError):  # LookupError: a charset Python does not know
        raise OAuthError(400, "invalid_request", "The form body could not be decoded.") from None
    fields: dict[str, str] = {}
    for name in form:
        values = form.getall(name)
        if len(values) > 1 or not isinstance(values[0], str):
            raise OAuthError(400, "invalid_request", f"Parameter {name[:40]!r} must appear once, as text.")
        fields[name] = values[0]
    return fields


def _decode_basic(encoded: str) -> tuple[str, str]:
    """Split base64 "id:secret" from a Basic header, or raise invalid_client."""
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode("utf-8")
        login, password = decoded.split(":", 1)
    except ValueError:  # bad base64, non-ASCII, non-UTF-8, or no colon
        raise OAuthError(401, "invalid_client", "Malformed Basic credentials.", _BASIC_CHALLENGE) from None
    return login, password


def _credentials(request: web.Request, fields: dict[str, str]) -> tuple[str, str, bool] | None:
    """Return (client_id, client_secret, used_basic) from HTTP Basic or the body, or None."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if header[:6].lower() == "basic ":
        if "client_secret" in fields:
            raise OAuthError(400, "invalid_request", "Use one client authentication method, not two.")
        login, password = _decode_basic(header[6:])
        return login, password, True
    if "client_id" in fields and "client_secret" in fields:
        return fields["client_id"], fields["client_secret"], False
    return None


async def token_handler(request: web.Request) -> web.Response:
    """POST /crm/token: exchange client credentials for a bearer JWT."""
    await hold_token_request(request)
    fields = await _form_fields(request)
    grant_type = fields.get("grant_type")
    if not grant_type:
        raise OAuthError(400, "invalid_request", "grant_type is required.")
    creds = _credentials(request, fields)
    issuer = request.app[keys.tokens]
    if creds is None or not issuer.client_ok(creds[0], creds[1]):
        challenge = _BASIC_CHALLENGE if creds is not None and creds[2] else None
        logger.info("token_refused", extra={"reason": "invalid_client"})
        raise OAuthError(401, "invalid_client", "Client authentication failed.", challenge)
    if grant_type != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported.")
    token, jti = issuer.issue(creds[0])
    request.app[keys.stats].tokens_issued += 1
    logger.info("token_issued", extra={"client_id": creds[0], "jti": jti, "expires_in": issuer.ttl})
    body = {"access_token": token, "token_type": "Bearer", "expires_in": issuer.ttl}
    return web.json_response(body, headers=_NO_CACHE)


@web.middleware
async def bearer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a valid, unexpired bearer JWT on every /crm/ route except the token endpoint."""
    if area_of(request) not in (Area.API, Area.ADMIN):
        return await handler(request)
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("A bearer access token is required.")
    try:
        request[keys.client] = request.app[keys.tokens].verify(token)
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The access token has expired.") from None
    except (jwt.InvalidTokenError, ValueError, UnicodeError):
        raise InvalidToken("The access token is invalid.") from None
    return await handler(request)
