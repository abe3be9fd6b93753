"""Typed keys for every object the application shares between components."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .alerts import Alerter
    from .cache import Cache
    from .config import Config
    from .crm.client import CrmClient
    from .db import Database
    from .events import EventBus
    from .metrics import Metrics
    from .readiness import Readiness
    from .store.creates import GroupCreator
    from .store.meetings import MeetingStore
    from .sync.engine import SyncEngine
    from .sync.reconcile import Sweeper

config_key: web.AppKey[Config] = web.AppKey("config")
db_key: web.AppKey[Database] = web.AppKey("db")
crm_key: web.AppKey[CrmClient] = web.AppKey("crm")
engine_key: web.AppKey[SyncEngine] = web.AppKey("engine")
alerter_key: web.AppKey[Alerter] = web.AppKey("alerter")
sweeper_key: web.AppKey[Sweeper] = web.AppKey("sweeper")
creator_key: web.AppKey[GroupCreator] = web.AppKey("creator")
meetings_key: web.AppKey[MeetingStore] = web.AppKey("meetings")
# Tokens already verified: their HMAC and claims are not checked again on every request.
token_cache_key: web.AppKey[Cache[str, tuple[str, float]]] = web.AppKey("token_cache")
events_key: web.AppKey[EventBus] = web.AppKey("events")
readiness_key: web.AppKey[Readiness] = web.AppKey("readiness")
metrics_key: web.AppKey[Metrics] = web.AppKey("metrics")
# Open /events sockets, closed with "going away" when the server shuts down.
sockets_key: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("event_sockets")
