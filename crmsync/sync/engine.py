"""Runs outbox jobs: loads each one, dispatches it by kind, and schedules retries."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from ..alerts import Alerter
from ..config import Config
from ..crm.client import CrmClient
from ..events import EventBus
from ..metrics import Metrics
from ..store import jobs
from ..store.database import Database
from ..store.jobs import Job
from ..store.meetings import MeetingStore
from ..timeutil import isoformat, parse_iso, utcnow
from .inflight import InFlight
from .pool import WorkerPool

logger = logging.getLogger(__name__)

JobHandler = Callable[["SyncEngine", Job], Awaitable[None]]
BatchHandler = Callable[["SyncEngine", list[Job]], Awaitable[None]]
# Called when a job's handler crashed MAX_CRASHES times: show the failure on the job's record.
GiveUp = Callable[["SyncEngine", Job, str], Awaitable[None]]
CRASHED = "An unexpected error stopped this sync {n} times; it will not be retried by itself (see the logs)."


class SyncEngine:
    """Everything a job handler needs, plus the worker pool that runs them."""

    def __init__(
        self,
        config: Config,
        db: Database,
        crm: CrmClient,
        alerter: Alerter,
        meetings: MeetingStore,
        events: EventBus,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.events = events
        self.metrics = metrics
        self.db = db
        self.meetings = meetings
        self.crm = crm
        self.alerter = alerter
        self.pool = WorkerPool(self.run_jobs, config.workers, config.batch_size)
        self.inflight = InFlight()
        self._handlers: dict[str, JobHandler] = {}
        self._batch_handlers: dict[str, BatchHandler] = {}
        self._give_up: dict[str, GiveUp] = {}

    def register(
        self, kind: str, handler: JobHandler, batch: BatchHandler | None = None, give_up: GiveUp | None = None
    ) -> None:
        """Route jobs of one kind to a handler, several due at once to an optional batch handler, and
        a job that keeps crashing to give_up."""
        self._handlers[kind] = handler
        if batch is not None:
            self._batch_handlers[kind] = batch
        if give_up is not None:
            self._give_up[kind] = give_up

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

    async def run_jobs(self, job_ids: list[int]) -> None:
        """Run the due jobs among these ids; those done, failed or not yet due are left alone."""
        due: dict[str, list[Job]] = defaultdict(list)
        now = utcnow()
        for job in await jobs.get_many(self.db, job_ids):
            if job.state != "queued":
                continue
            if job.run_after and (wait := (parse_iso(job.run_after) - now).total_seconds()) > 0:
                self.pool.submit_later(job.id, wait)
                continue
            due[job.kind].append(job)
        for kind, group in due.items():
            batch = self._batch_handlers.get(kind)
            if batch is not None and len(group) > 1:
                await self.guarded(batch, group, group)
            else:
                await asyncio.gather(*(self.guarded(self._handlers[kind], job, [job]) for job in group))

    async def guarded(self, handler: Callable[..., Awaitable[None]], work: Any, crashable: list[Job]) -> None:
        """Run a handler; a bug in it is logged and its jobs retried later, and failed once it keeps crashing."""
        try:
            await handler(self, work)
        except Exception:
            logger.exception("job_crashed", extra={"job_ids": [job.id for job in crashable][:20]})
            await self._count_crashes(crashable)

    async def _count_crashes(self, crashed: list[Job]) -> None:
        now = utcnow()
        run_after = isoformat(now + timedelta(seconds=self.config.job_backoff[0]))
        async with self.db.transaction() as conn:
            counted = [await jobs.record_crash(conn, job, "crashed", run_after, isoformat(now)) for job in crashed]
        for job in counted:
            if job is None:
                continue  # re-armed by a newer change meanwhile; that run goes ahead
            if job.state == "queued":
                self.pool.submit_later(job.id, self.config.job_backoff[0])
                continue
            message = CRASHED.format(n=job.crashes)
            logger.error(
                "job_failed_after_crashes",
                extra={"job_id": job.id, "kind": job.kind, "entity_id": job.entity_id, "crashes": job.crashes},
            )
            if (give_up := self._give_up.get(job.kind)) is not None:
                await give_up(self, job, message)
            else:
                self.alerter.sync_failed(job.kind, job.entity_id, None, message)

    def next_retry(self, job: Job) -> tuple[str, float] | None:
        """When a transiently failed job should run again, or None once its retry budget is spent."""
        round_no = job.attempts + 1
        if round_no > self.config.job_retries:
            return None
        steps = self.config.job_backoff
        delay = steps[min(round_no, len(steps)) - 1] * random.uniform(0.8, 1.2)
        return isoformat(utcnow() + timedelta(seconds=delay)), delay
