"""Typed keys for everything the mock CRM keeps on its app and requests.

App keys (read them in tests as `app[keys.store]`, `app[keys.stats]`, ...):

- `config`      MockConfig the app was built with.
- `store`       Store: `.users` / `.meetings` dicts by id (`len(app[keys.store].users)`).
- `stats`       Stats: `calls` Counter by "METHOD /route/{pattern}" (every request that matched a
                route, whatever its outcome), `responses` Counter by status, `tokens_issued`,
                `rate_limited`, `injected_failures`, `lost_replies`, `dropped_connections`,
                `webhooks_emitted`, `webhook_attempts`, `webhooks_delivered`, `webhooks_failed`,
                `webhooks_pending`, `deliveries` (list of Delivery).
- `faults`      FaultSettings now in force (changed live by PUT /crm/_admin/faults).
- `rng`         random.Random behind every injected fault (seeded by config.seed).
- `tokens`      TokenIssuer: `.key` is the HS256 key, `.issue(client_id)` makes a token.
- `limiter`     RateLimiter (token bucket per client).
- `idempotency` IdempotencyCache of stored create responses.
- `webhooks`    WebhookDispatcher: `.queue` of events waiting for delivery.
- `inflight`    InFlight: per idempotency key, the (start, end) of each request carrying it.
- `http`        the one aiohttp.ClientSession (exists only while the app runs).
- `webhook_task` the background dispatcher task (exists only while the app runs).

Request keys: `client` (JWT sub of an authenticated request), `rate_headers` (X-RateLimit-* values
for its response), `dropped` (the reply was lost by closing the connection), `carried_keys`
(idempotency keys of the creates a request carries).
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
from aiohttp import web

from mock_crm.buckets import RateLimiter
from mock_crm.config import MockConfig
from mock_crm.idempotency import IdempotencyCache
from mock_crm.inflight import InFlight
from mock_crm.settings import FaultSettings
from mock_crm.stats import Stats
from mock_crm.store import Store
from mock_crm.tokens import TokenIssuer
from mock_crm.webhooks import WebhookDispatcher

config = web.AppKey("config", MockConfig)
store = web.AppKey("store", Store)
stats = web.AppKey("stats", Stats)
faults = web.AppKey("faults", FaultSettings)
rng = web.AppKey("rng", random.Random)
tokens = web.AppKey("tokens", TokenIssuer)
limiter = web.AppKey("limiter", RateLimiter)
idempotency = web.AppKey("idempotency", IdempotencyCache)
webhooks = web.AppKey("webhooks", WebhookDispatcher)
inflight = web.AppKey("inflight", InFlight)
http = web.AppKey("http", aiohttp.ClientSession)
webhook_task = web.AppKey("webhook_task", asyncio.Task[None])

client = web.RequestKey("client", str)  # JWT sub of an authenticated request
rate_headers = web.RequestKey("rate_headers", dict[str, str])  # X-RateLimit-* for the response
dropped = web.RequestKey("dropped", bool)  # the connection was closed instead of answering
carried_keys = web.RequestKey("carried_keys", list[str])  # idempotency keys of the creates in the request
