"""Typed keys for every object the application shares between components."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .alerts import Alerter
    from .cache import Cache, RecentSet
    from .cluster import Membership
    from .config import Config
    from .crm.adapter import CrmAdapter
    from .events import EventBus
    from .metrics import Metrics
    from .readiness import Readiness
    from .signin_limit import SigninLimiter
    from .store.creates import UserCreator
    from .store.database import Database
    from .store.meetings import MeetingStore
    from .sync.engine import SyncEngine
    from .sync.scans import Scans
    from .sync.sweeper import Sweeper

config_key: web.AppKey[Config] = web.AppKey("config")
db_key: web.AppKey[Database] = web.AppKey("db")
crm_key: web.AppKey[CrmAdapter] = web.AppKey("crm")
engine_key: web.AppKey[SyncEngine] = web.AppKey("engine")
alerter_key: web.AppKey[Alerter] = web.AppKey("alerter")
sweeper_key: web.AppKey[Sweeper] = web.AppKey("sweeper")
creator_key: web.AppKey[UserCreator] = web.AppKey("creator")
meetings_key: web.AppKey[MeetingStore] = web.AppKey("meetings")
# Tokens already verified: their HMAC and claims are not checked again on every request.
token_cache_key: web.AppKey[Cache[str, tuple[str, float]]] = web.AppKey("token_cache")
# Accounts seen to exist lately; believed for Config.account_cache_ttl, so a deleted account's tokens stop soon.
accounts_seen_key: web.AppKey[RecentSet[str]] = web.AppKey("accounts_seen")
signin_limiter_key: web.AppKey[SigninLimiter] = web.AppKey("signin_limiter")
events_key: web.AppKey[EventBus] = web.AppKey("events")
readiness_key: web.AppKey[Readiness] = web.AppKey("readiness")
metrics_key: web.AppKey[Metrics] = web.AppKey("metrics")
# Open /events sockets, closed with "going away" when the server shuts down.
sockets_key: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("event_sockets")
# This process's name among the replicas of its database.
replica_key: web.AppKey[str] = web.AppKey("replica_id")
membership_key: web.AppKey[Membership] = web.AppKey("membership")
scans_key: web.AppKey[Scans] = web.AppKey("scans")
