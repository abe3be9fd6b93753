"""API authentication: every route needs an account token unless its handler is marked public."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from .errors import Handler, Unauthorized
from .keys import config_key, db_key, token_cache_key
from .store import accounts
from .tokens import expires_at, token_from_header, verify_token

account_id_key: web.RequestKey[str] = web.RequestKey("account_id")

H = TypeVar("H", bound=Callable[..., object])


def public(handler: H) -> H:
    """Mark a handler as reachable without a token."""
    handler.__crmsync_public__ = True  # type: ignore[attr-defined]
    return handler


def _is_public(request: web.Request) -> bool:
    route_handler = request.match_info.handler
    # Unmatched routes (404/405) and static files answer the same with or without a token.
    return getattr(route_handler, "__crmsync_public__", False) or request.match_info.http_exception is not None


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
    token = token_from_header(request.headers.get("Authorization"))
    account_id = _verified(request.app, token)
    if not await accounts.exists(request.app[db_key], account_id):
        raise Unauthorized("The account for this token no longer exists.")
    request[account_id_key] = account_id
    return await handler(request)
