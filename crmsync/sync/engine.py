"""Runs outbox jobs: loads each one, dispatches it by kind, and schedules retries."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from ..alerts import Alerter
from ..config import Config
from ..crm.client import CrmClient
from ..db import Database
from ..store import jobs
from ..store.jobs import Job
from ..timeutil import isoformat, parse_iso, utcnow
from .pool import WorkerPool

logger = logging.getLogger(__name__)

JobHandler = Callable[["SyncEngine", Job], Awaitable[None]]


class SyncEngine:
    """Everything a job handler needs, plus the worker pool that runs them."""

    def __init__(self, config: Config, db: Database, crm: CrmClient, alerter: Alerter) -> None:
        self.config = config
        self.db = db
        self.crm = crm
        self.alerter = alerter
        self.pool = WorkerPool(self.run_job, config.workers)
        self._handlers: dict[str, JobHandler] = {}

    def register(self, kind: str, handler: JobHandler) -> None:
        """Route jobs of one kind to a handler."""
        self._handlers[kind] = handler

    async def start(self) -> None:
        """Start the workers and queue every unfinished job again (a crash loses nothing)."""
        self.pool.start()
        now = utcnow()
        pending = await jobs.open_jobs(self.db)
        for job_id, run_after in pending:
            delay = (parse_iso(run_after) - now).total_seconds() if run_after else 0.0
            self.pool.submit_later(job_id, delay)
        if pending:
            logger.info("jobs_recovered", extra={"count": len(pending)})

    async def stop(self) -> None:
        """Let running jobs finish within the shutdown bound."""
        await self.pool.stop(self.config.shutdown_timeout)

    async def run_job(self, job_id: int) -> None:
        """Run one due job; jobs already done, failed or not yet due are left alone."""
        job = await jobs.get(self.db, job_id)
        if job is None or job.state != "queued":
            return
        if job.run_after and (wait := (parse_iso(job.run_after) - utcnow()).total_seconds()) > 0:
            self.pool.submit_later(job_id, wait)
            return
        await self._handlers[job.kind](self, job)

    def next_retry(self, job: Job) -> tuple[str, float] | None:
        """When a transiently failed job should run again, or None once its retry budget is spent."""
        round_no = job.attempts + 1
        if round_no > self.config.job_retries:
            return None
        steps = self.config.job_backoff
        delay = steps[min(round_no, len(steps)) - 1] * random.uniform(0.8, 1.2)
        return isoformat(utcnow() + timedelta(seconds=delay)), delay
