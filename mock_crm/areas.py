"""Which part of the API a request targets, so middlewares know what applies to it."""

from __future__ import annotations

from enum import Enum

from aiohttp import web

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Area(Enum):
    """Public (no auth), the OAuth token endpoint, admin (auth only), or API (auth and every fault)."""

    PUBLIC = "public"
    OAUTH = "oauth"
    ADMIN = "admin"
    API = "api"


def area_of(request: web.Request) -> Area:
    """Classify a request by its path."""
    path = request.path
    if path == "/crm/token":
        return Area.OAUTH
    if path == "/crm/_admin" or path.startswith("/crm/_admin/"):
        return Area.ADMIN
    if path == "/crm" or path.startswith("/crm/"):
        return Area.API
    return Area.PUBLIC


def route_name(request: web.Request) -> str | None:
    """Return "METHOD /pattern" of the matched route (e.g. "PATCH /crm/users/{crm_id}"), else None."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return f"{request.method} {resource.canonical}"
