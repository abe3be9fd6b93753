"""Fixtures for the mock CRM: the app under test via aiohttp_client, a token, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mock_crm.app import create_app
from mock_crm.hubspot.app import create_app as create_hubspot_app
from tests.mock_crm.helpers import MakeClient, Receiver, bearer, config
from tests.mock_crm.hubspot_helpers import hubspot_config


@pytest.fixture
def make_mock(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> MakeClient:
    """Build a mock CRM client from MockConfig overrides."""

    async def build(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_app(config(**overrides)))

    return build


@pytest.fixture
async def mock(make_mock: MakeClient) -> TestClient:
    """A well-behaved mock CRM (no webhooks, no faults)."""
    return await make_mock()


@pytest.fixture
async def headers(mock: TestClient) -> dict[str, str]:
    """An Authorization header with a fresh bearer token for `mock`."""
    return await bearer(mock)


MakeReceiver = Callable[[], Awaitable[Receiver]]


@pytest.fixture
def make_receiver(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> MakeReceiver:
    """Start webhook receivers (several stand for the replicas behind a load balancer), each with an empty script."""

    async def build() -> Receiver:
        app = web.Application()

        async def hook(request: web.Request) -> web.Response:
            rec.hits.append((dict(request.headers), await request.read()))
            if rec.hold is not None:
                await rec.hold.wait()
            step = rec.script.pop(0) if rec.script else 204
            status, headers = step if isinstance(step, tuple) else (step, {})
            return web.Response(status=status, headers=headers)

        app.router.add_post("/webhook", hook)
        rec = Receiver(await aiohttp_server(app), [])
        return rec

    return build


@pytest.fixture
async def receiver(make_receiver: MakeReceiver) -> Receiver:
    """A running webhook receiver with an empty script."""
    return await make_receiver()


@pytest.fixture
def make_hubspot(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> MakeClient:
    """Build a HubSpot fake client from HubSpotConfig overrides."""

    async def build(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_hubspot_app(hubspot_config(**overrides)))

    return build


@pytest.fixture
async def hubspot(make_hubspot: MakeClient) -> TestClient:
    """A well-behaved HubSpot fake (no webhooks, no faults, generous limits)."""
    return await make_hubspot()
