"""Shared constants and helpers for the mock CRM tests."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp.test_utils import TestClient, TestServer

from mock_crm.config import MockConfig
from tests.polling import eventually  # noqa: F401 (re-exported for the tests)

CLIENT_ID = "crmsync"
CLIENT_SECRET = "mock-test-secret-9f8e7d"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"mock-webhook-key-0123456789abcdef").decode()
TOKEN_FORM = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
MakeClient = Callable[..., Awaitable[TestClient]]
ALICE = {"name": "Alice Example", "email": "alice@example.com", "phone": "+1 (555) 010-2000"}


def config(**overrides: Any) -> MockConfig:
    """A deterministic, well-behaved mock CRM config with overrides."""
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "seed": 1}
    values.update(overrides)
    return MockConfig(**values)


def person(n: int) -> dict[str, str]:
    """A valid, unique user body."""
    return {"name": f"Person {n}", "email": f"person{n}@example.com", "phone": f"+44 20 7946 {n:04d}"}


async def bearer(client: TestClient) -> dict[str, str]:
    """Fetch a token with the form flow and return the Authorization header."""
    resp = await client.post("/crm/token", data=TOKEN_FORM)
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


@attrs.define
class Receiver:
    """A webhook endpoint that answers from a script of statuses (then 204) and records each hit."""

    server: TestServer
    script: list[int | tuple[int, dict[str, str]]]
    hits: list[tuple[dict[str, str], bytes]] = attrs.Factory(list)
    hold: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("/webhook"))
