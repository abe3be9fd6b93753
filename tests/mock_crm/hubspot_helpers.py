"""Shared constants and helpers for the HubSpot fake's tests."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from mock_crm.hubspot.config import HubSpotConfig

STATIC_TOKEN = "pat-na1-test-static-token"
AUTH = {"Authorization": f"Bearer {STATIC_TOKEN}"}
CLIENT_ID = "hubspot-test-client"
CLIENT_SECRET = "hubspot-test-client-secret"
REFRESH_TOKEN = "hubspot-test-refresh-token"
APP_SECRET = "hubspot-test-app-secret"
CONTACTS = "/crm/v3/objects/contacts"
MEETINGS = "/crm/v3/objects/meetings"


def hubspot_config(**overrides: Any) -> HubSpotConfig:
    """A deterministic, well-behaved fake config with overrides."""
    values: dict[str, Any] = {"access_token": STATIC_TOKEN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                              "refresh_token": REFRESH_TOKEN, "app_secret": APP_SECRET, "seed": 1}  # fmt: skip
    values.update(overrides)
    return HubSpotConfig(**values)


def props(n: int) -> dict[str, str]:
    """Valid, unique contact properties."""
    return {"firstname": f"Person{n}", "lastname": "Example", "email": f"person{n}@example.com",
            "phone": f"+44 20 7946 {n:04d}"}  # fmt: skip


async def create(client: TestClient, n: int) -> dict[str, Any]:
    """Create contact n through the API and return the answer."""
    resp = await client.post(CONTACTS, json={"properties": props(n)}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def hubspot_error(resp: ClientResponse, status: int, category: str) -> dict[str, Any]:
    """Assert HubSpot's error body with this status and category; return it."""
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["status"] == "error" and body["category"] == category, body
    assert isinstance(body["message"], str) and body["message"]
    assert len(body["correlationId"]) == 36
    return body


async def set_faults(client: TestClient, **values: Any) -> dict[str, Any]:
    """PUT /_fake/faults and return the settings now in force."""
    resp = await client.put("/_fake/faults", json=values, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()
