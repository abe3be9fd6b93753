"""Typed keys for what the HubSpot fake keeps on its app (state shared with the mock uses mock_crm.keys).

From mock_crm.keys the fake uses `stats`, `rng`, `http`, `webhook_task`, `webhooks` (the mock's
WebhookDispatcher with the HubSpot signer) and the request key `dropped`.
"""

from __future__ import annotations

from aiohttp import web

from mock_crm.hubspot.config import HubSpotConfig
from mock_crm.hubspot.limits import RateLimits
from mock_crm.hubspot.settings import FakeFaults
from mock_crm.hubspot.store import HubStore
from mock_crm.hubspot.tokens import AccessTokens
from mock_crm.hubspot.webhooks import EventBatcher

config = web.AppKey("hubspot_config", HubSpotConfig)
store = web.AppKey("hubspot_store", HubStore)
tokens = web.AppKey("hubspot_tokens", AccessTokens)
faults = web.AppKey("hubspot_faults", FakeFaults)
limits = web.AppKey("hubspot_limits", RateLimits)
events = web.AppKey("hubspot_events", EventBatcher)

token = web.RequestKey("hubspot_token", str)  # the bearer token of an authenticated request
rate_headers = web.RequestKey("hubspot_rate_headers", dict[str, str])  # X-HubSpot-RateLimit-* for the reply
