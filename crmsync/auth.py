"""API authentication: every route needs an account token unless its handler is marked public."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from .api.errors import Handler
from .errors import Unauthorized
from .keys import accounts_seen_key, config_key, db_key, token_cache_key
from .store import accounts
from .tokens import expires_at, token_from_header, verify_token

account_id_key: web.RequestKey[str] = web.RequestKey("account_id")

H = TypeVar("H", bound=Callable[..., object])


def public(handler: H) -> H:
    """Mark a handler as reachable without a token."""
    handler.__crmsync_public__ = True  # type: ignore[attr-defined]
    return handler


def _is_public(request: web.Request) -> bool:
    match = request.match_info
    # Unmatched routes (404/405) and the dashboard's static files answer the same with or without a token.
    if match.http_exception is not None or isinstance(match.route.resource, web.StaticResource):
        return True
    return getattr(match.handler, "__crmsync_public__", False)


def _verified(app: web.Application, token: str) -> str:
    """The account id of a token; a token verified before is looked up, but its expiry still checked."""
    cache = app[token_cache_key]
    if (hit := cache.get(token)) is not None and hit[1] > time.time():
        return hit[0]
    account_id = verify_token(app[config_key].jwt_secret, token)
    cache.put(token, (account_id, expires_at(token)))
    return account_id


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller's account from the token, or answer 401."""
    if request.method == "OPTIONS" or _is_public(request):
        return await handler(request)
    request[account_id_key] = await account_for_token(request.app, request.headers.get("Authorization"))
    return await handler(request)


async def account_for_token(app: web.Application, authorization: str | None) -> str:
    """The account an Authorization value names, or Unauthorized."""
    account_id = _verified(app, token_from_header(authorization))
    # A cached token still names an account that may be gone: existence is asked of the database again
    # once the last sighting is older than the account cache's age.
    seen = app[accounts_seen_key]
    if account_id not in seen:
        if not await accounts.exists(app[db_key], account_id):
            raise Unauthorized("The account for this token no longer exists.")
        seen.add(account_id)
    return account_id
