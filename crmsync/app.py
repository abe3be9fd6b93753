"""The application factory: routes, middlewares and the resources' cleanup contexts."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from .alerts import Alerter
from .api import (
    accounts,
    batch,
    cluster,
    conflicts,
    events,
    health,
    hubspot_webhook,
    meetings,
    pages,
    reconcile,
    status,
    users,
    webhook,
)
from .api.errors import error_middleware
from .api.events import close_sockets
from .api.pages import STATIC
from .auth import auth_middleware
from .bodies import LARGEST_BODY, body_middleware
from .cache import Cache, RecentSet
from .cluster import membership_context, new_replica_id
from .config import Config
from .crm.retry import attempt_tracer
from .crm.select import build_adapter
from .event_reads import EventReader
from .events import EventBus
from .keys import (
    accounts_seen_key,
    alerter_key,
    config_key,
    creator_key,
    crm_key,
    db_key,
    engine_key,
    events_key,
    meetings_key,
    metrics_key,
    replica_key,
    signin_limiter_key,
    sockets_key,
    token_cache_key,
)  # fmt: skip
from .metrics import Metrics
from .readiness import readiness_context
from .request_log import request_log_middleware
from .retention import retention_context
from .signin_limit import SigninLimiter
from .store.creates import UserCreator
from .store.engines import open_database, parse_database_url
from .store.jobs import USER_DELETE, USER_PUSH, USER_RECONCILE
from .store.meeting_runs import STAGE_JOBS
from .store.meetings import MeetingStore
from .sync.engine import SyncEngine
from .sync.meetings import give_up_stage, stage_handler
from .sync.outcomes import give_up
from .sync.reconcile_job import reconcile_job
from .sync.scan_schedule import scans_context
from .sync.sweeper import sweeper_context
from .sync.user_batch import push_users
from .sync.user_delete import delete_user_job
from .sync.user_push import push_user


def create_app(config: Config) -> web.Application:
    """Build the backend; all I/O happens in the cleanup contexts, in order db → HTTP → workers."""
    middlewares = [request_log_middleware, error_middleware, body_middleware, auth_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=LARGEST_BODY)
    app[config_key] = config
    app[alerter_key] = Alerter(config.smtp)
    app[token_cache_key] = Cache(10_000)
    app[accounts_seen_key] = RecentSet(config.account_cache_ttl)
    app[signin_limiter_key] = SigninLimiter(config.signin_max_failures, config.signin_window)
    app[events_key] = EventBus()
    app[metrics_key] = Metrics()
    app[sockets_key] = weakref.WeakSet()
    app.on_shutdown.append(close_sockets)
    app[replica_key] = new_replica_id()
    app.cleanup_ctx.extend(
        [
            _database,
            retention_context,
            _http,
            membership_context,
            _engine,
            sweeper_context,
            scans_context,
            readiness_context,
        ]
    )
    app.router.add_post("/accounts", accounts.sign_up)
    app.router.add_post("/authenticate", accounts.authenticate)
    app.router.add_get("/", pages.dashboard)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/openapi.json", pages.openapi)
    app.router.add_get("/events", events.events)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/cluster", cluster.cluster)
    app.router.add_get("/status", status.status)
    app.router.add_post("/users", users.create_user)
    app.router.add_post("/users/batch", batch.create_users)
    app.router.add_post("/users/sync-failed", users.sync_failed)
    app.router.add_get("/users", users.list_users)
    app.router.add_get("/users/{user_id}", users.get_user)
    app.router.add_put("/users/{user_id}", users.edit_user)
    app.router.add_patch("/users/{user_id}", users.edit_user)
    app.router.add_post("/users/{user_id}/sync", users.sync_user)
    app.router.add_get("/users/{user_id}/history", users.user_history)
    app.router.add_post("/users/{user_id}/reconcile", reconcile.reconcile_one)
    app.router.add_post("/reconcile", reconcile.reconcile_all)
    app.router.add_get("/reconcile", reconcile.reconcile_status)
    app.router.add_post("/import", reconcile.start_import)
    app.router.add_get("/import", reconcile.import_status)
    app.router.add_delete("/users/{user_id}", users.delete_user)
    app.router.add_get("/conflicts", conflicts.list_conflicts)
    app.router.add_post("/webhook", webhook.receive_webhook)
    app.router.add_post("/webhook/hubspot", hubspot_webhook.receive_hubspot_webhook)
    app.router.add_post("/meetings", meetings.create_meeting)
    app.router.add_get("/meetings", meetings.list_meetings)
    app.router.add_get("/meetings/{meeting_id}", meetings.get_meeting)
    app.router.add_put("/meetings/{meeting_id}", meetings.edit_meeting)
    app.router.add_patch("/meetings/{meeting_id}", meetings.edit_meeting)
    app.router.add_delete("/meetings/{meeting_id}", meetings.delete_meeting)
    app.router.add_post("/meetings/{meeting_id}/sync", meetings.sync_meeting)
    app.router.add_get("/meetings/{meeting_id}/sync_status", meetings.sync_status)
    app.router.add_get("/meetings/{meeting_id}/last_sync_success", meetings.last_sync_success)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    db = await open_database(parse_database_url(config.database_url), config.db_pool)
    app[db_key] = db
    meetings = app[meetings_key] = MeetingStore(db, app[config_key].meeting_cache_size)
    app[events_key].attach(db, config.replica_heartbeat, EventReader(db, meetings))
    creator = app[creator_key] = UserCreator(db)
    yield
    await creator.close()
    await app[events_key].detach()
    await db.close()


async def _http(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    timeout = aiohttp.ClientTimeout(total=config.crm_timeout, connect=min(5.0, config.crm_timeout))
    async with aiohttp.ClientSession(timeout=timeout, trace_configs=[attempt_tracer(app[metrics_key])]) as session:
        app[crm_key] = build_adapter(config, session)
        yield
        await app[crm_key].transport.tokens.close()


async def _engine(app: web.Application) -> AsyncIterator[None]:
    parts = (app[db_key], app[crm_key], app[alerter_key], app[meetings_key], app[events_key], app[metrics_key])
    engine = SyncEngine(app[config_key], *parts, app[replica_key])
    engine.register(USER_PUSH, push_user, batch=push_users, give_up=give_up)
    engine.register(USER_RECONCILE, reconcile_job)
    engine.register(USER_DELETE, delete_user_job)
    for number, kind in enumerate(STAGE_JOBS, start=1):
        engine.register(kind, stage_handler(number), give_up=give_up_stage)
    app[engine_key] = engine
    await engine.start()
    yield
    await engine.stop()
    await app[alerter_key].close()
