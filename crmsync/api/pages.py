"""The dashboard page and the API description, both served from files in the package."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..auth import public

STATIC = Path(__file__).resolve().parent.parent / "static"
OPENAPI = Path(__file__).resolve().parent.parent / "openapi.json"


@public
async def dashboard(_: web.Request) -> web.FileResponse:
    """GET /: the single-page dashboard (plain HTML, CSS and JavaScript)."""
    return web.FileResponse(STATIC / "index.html")


@public
async def openapi(_: web.Request) -> web.FileResponse:
    """GET /openapi.json: the OpenAPI 3.1 description of this API."""
    return web.FileResponse(OPENAPI, headers={"Content-Type": "application/json"})
