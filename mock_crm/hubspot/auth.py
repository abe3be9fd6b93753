"""POST /oauth/v1/token (the refresh-token grant) and the bearer middleware, both in HubSpot's shapes."""

from __future__ import annotations

import logging
import uuid

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from mock_crm import keys as mock_keys
from mock_crm.areas import Area
from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import HubSpotError
from mock_crm.hubspot.middleware import area_of
from mock_crm.hubspot.tokens import TokenState
from mock_crm.tokens import same_secret

logger = logging.getLogger(__name__)


def _oauth_error(status: str, message: str) -> web.Response:
    """HubSpot's OAuth error body: the reason in `status`, a message and a correlationId."""
    body = {"status": status, "message": message, "correlationId": str(uuid.uuid4())}
    return web.json_response(body, status=400)


async def token_handler(request: web.Request) -> web.Response:
    """POST /oauth/v1/token: grant_type=refresh_token with client_id, client_secret and refresh_token."""
    config = request.app[keys.config]
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error("BAD_REQUEST", "Send the form as application/x-www-form-urlencoded.")
    try:
        form = await request.post()
    except (ValueError, LookupError):  # LookupError: a charset Python does not know
        return _oauth_error("BAD_REQUEST", "The form body could not be decoded.")
    fields = {name: str(form.get(name, "")) for name in ("grant_type", "client_id", "client_secret", "refresh_token")}
    if fields["grant_type"] != "refresh_token":
        return _oauth_error("BAD_GRANT_TYPE", "grant_type must be refresh_token (the only grant the fake serves).")
    if not config.client_secret or not same_secret(fields["client_id"], config.client_id):
        return _oauth_error("BAD_CLIENT_ID", "missing or invalid client_id")
    if not same_secret(fields["client_secret"], config.client_secret):
        return _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client_secret")
    if not config.refresh_token or not same_secret(fields["refresh_token"], config.refresh_token):
        logger.info("hubspot_token_refused", extra={"reason": "BAD_REFRESH_TOKEN"})
        return _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
    tokens = request.app[keys.tokens]
    access = tokens.issue()
    request.app[mock_keys.stats].tokens_issued += 1
    logger.info("hubspot_token_issued", extra={"expires_in": tokens.ttl})
    body = {"token_type": "bearer", "access_token": access, "refresh_token": config.refresh_token,
            "expires_in": tokens.ttl}  # fmt: skip
    return web.json_response(body, headers={hdrs.CACHE_CONTROL: "no-store"})


@web.middleware
async def bearer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require the static token or a live access token on API and admin routes."""
    if area_of(request) not in (Area.API, Area.ADMIN):
        return await handler(request)
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    token = token.strip()
    state = request.app[keys.tokens].check(token) if scheme.lower() == "bearer" and token else TokenState.UNKNOWN
    if state is TokenState.EXPIRED:
        raise HubSpotError(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
    if state is TokenState.UNKNOWN:
        raise HubSpotError(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )
    request[keys.token] = token
    return await handler(request)
