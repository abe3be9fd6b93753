"""Prometheus metrics, in a registry of the app's own so that several apps in one process never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Every series crmsync exports; counters move as things happen, gauges are read at scrape time."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.sync_attempts = Counter(
            "crmsync_sync_attempts", "CRM requests made for users, by outcome", ["outcome"], registry=registry
        )
        self.sync_duration = Histogram(
            "crmsync_sync_duration_seconds", "Time from a push starting to its outcome being stored",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry,
        )  # fmt: skip
        self.syncs = Counter("crmsync_syncs", "Pushes finished, by result", ["result"], registry=registry)
        self.crm_requests = Counter(
            "crmsync_crm_requests", "HTTP requests to the CRM, by status ('error' when none)", ["status"],
            registry=registry,
        )  # fmt: skip
        self.rate_limited = Counter("crmsync_crm_rate_limited", "CRM answers of 429", registry=registry)
        self.retries = Counter(
            "crmsync_retries", "Retries, at the request level and at the job level", ["level"], registry=registry
        )
        self.queue_depth = Gauge("crmsync_queue_depth", "Jobs queued in the database (due or not)", registry=registry)
        self.replicas = Gauge("crmsync_replicas", "Replicas alive on this database", registry=registry)
        self.replica_jobs_running = Gauge(
            "crmsync_replica_jobs_running", "Jobs running, per replica (from the heartbeats)", ["replica"],
            registry=registry,
        )  # fmt: skip
        self.replica_jobs_done = Gauge(
            "crmsync_replica_jobs_done", "Jobs run since start, per replica (from the heartbeats)", ["replica"],
            registry=registry,
        )  # fmt: skip
        self.users = Gauge("crmsync_users", "Users by sync_status", ["sync_status"], registry=registry)
        self.webhooks = Counter("crmsync_webhook_events", "Webhook events by result", ["result"], registry=registry)
        self.meeting_stages = Counter(
            "crmsync_meeting_stages", "Meeting sync stages ended, by stage and outcome", ["stage", "outcome"],
            registry=registry,
        )  # fmt: skip

    def render(self) -> bytes:
        """The text exposition of every series."""
        return generate_latest(self.registry)
