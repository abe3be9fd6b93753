"""Runs outbox jobs: the dispatcher claims them, the engine routes each to its handler by kind."""

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
from ..crm.adapter import CrmAdapter
from ..events import EventBus
from ..metrics import Metrics
from ..store import jobs
from ..store.database import Database
from ..store.errors import StorageUnavailable, StoreError
from ..store.jobs import Job
from ..store.meetings import MeetingStore
from ..timeutil import isoformat, parse_iso
from .dispatcher import Dispatcher

logger = logging.getLogger(__name__)

JobHandler = Callable[["SyncEngine", Job], Awaitable[None]]
BatchHandler = Callable[["SyncEngine", list[Job]], Awaitable[None]]
# Called when a job's handler crashed MAX_CRASHES times: show the failure on the job's record.
GiveUp = Callable[["SyncEngine", Job, str], Awaitable[None]]
CRASHED = "An unexpected error stopped this sync {n} times; it will not be retried by itself (see the logs)."


class SyncEngine:
    """Everything a job handler needs, and the dispatcher that feeds them."""

    def __init__(
        self,
        config: Config,
        db: Database,
        crm: CrmAdapter,
        alerter: Alerter,
        meetings: MeetingStore,
        events: EventBus,
        metrics: Metrics,
        replica_id: str,
    ) -> None:
        self.config = config
        self.events = events
        self.metrics = metrics
        self.db = db
        self.meetings = meetings
        self.crm = crm
        self.alerter = alerter
        self.replica_id = replica_id
        self.dispatcher = Dispatcher(
            db, self.run_jobs, replica_id, config.workers, config.batch_size, config.job_lease, self._crm_held
        )  # fmt: skip
        self._alerted_hold = 0.0
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
        """Start claiming. A SQLite file has one process: leases a previous run left are its own, freed now."""
        if not self.db.shared and (freed := await jobs.release_owned(self.db, None)):
            logger.info("leases_recovered", extra={"count": freed})
        self.dispatcher.start()

    async def stop(self) -> None:
        """Stop claiming; running jobs finish within the shutdown bound; the rest go back to the table."""
        await self.dispatcher.stop(self.config.shutdown_timeout)

    def wake(self) -> None:
        """Work was queued in this process: look for it at once (other replicas hear of it by notification)."""
        self.dispatcher.wake()

    async def run_now(self, job_id: int, handler: JobHandler) -> bool:
        """Claim one job and run it here and now (unless another run holds it); True when it ran here."""
        now = self.db.now()
        until = isoformat(parse_iso(now) + timedelta(seconds=self.config.job_lease))
        job = await jobs.claim_one(self.db, job_id, self.replica_id, now, until)
        if job is None:
            return False
        self.dispatcher.running[job.id] = job
        try:
            await self.guarded(handler, job, [job])
        finally:
            self.dispatcher.running.pop(job.id, None)
        return True

    async def run_jobs(self, claimed: list[Job]) -> None:
        """Run claimed jobs: several due user pushes through the batch handler, the others one by one."""
        by_kind: dict[str, list[Job]] = defaultdict(list)
        for job in claimed:
            by_kind[job.kind].append(job)
        for kind, group in by_kind.items():
            handler = self._handlers.get(kind)
            if handler is None:
                logger.error("job_kind_unknown", extra={"kind": kind, "job_ids": [job.id for job in group][:20]})
                continue
            batch = self._batch_handlers.get(kind)
            if batch is not None and len(group) > 1:
                await self.guarded(batch, group, group)
            else:
                await asyncio.gather(*(self.guarded(handler, job, [job]) for job in group))

    async def guarded(self, handler: Callable[..., Awaitable[None]], work: Any, crashable: list[Job]) -> None:
        """Run a handler; a bug in it is logged and its jobs retried later, and failed once it keeps crashing."""
        try:
            await handler(self, work)
        except StoreError as exc:  # the database is away or busy: not the job's fault, so not a crash
            level = logging.INFO if isinstance(exc, StorageUnavailable) else logging.WARNING  # logged per episode
            ids = [job.id for job in crashable][:20]
            logger.log(level, "job_interrupted", extra={"job_ids": ids, "error": str(exc)})
            await self._postpone(crashable)
        except Exception:
            logger.exception("job_crashed", extra={"job_ids": [job.id for job in crashable][:20]})
            try:
                await self._count_crashes(crashable)
            except StoreError as exc:  # the claim's lease runs out and another run counts again
                logger.warning("crash_not_recorded", extra={"error": str(exc)})

    async def _postpone(self, interrupted: list[Job]) -> None:
        """Run interrupted jobs again after the first backoff step; if even that cannot be written, their
        leases run out and any replica takes them then."""
        run_after = isoformat(parse_iso(self.db.now()) + timedelta(seconds=self.config.job_backoff[0]))
        for job in interrupted:
            try:
                await jobs.postpone(self.db, job, run_after)
            except StoreError:
                return

    async def _count_crashes(self, crashed: list[Job]) -> None:
        now = self.db.now()
        run_after = isoformat(parse_iso(now) + timedelta(seconds=self.config.job_backoff[0]))
        for counted in [await jobs.record_crash(self.db, job, "crashed", run_after, now) for job in crashed]:
            if counted is None or counted.state == "queued":
                continue  # re-armed or re-claimed meanwhile (that run goes ahead), or retried when due
            message = CRASHED.format(n=counted.crashes)
            logger.error(
                "job_failed_after_crashes",
                extra={"job_id": counted.id, "kind": counted.kind, "entity_id": counted.entity_id,
                       "crashes": counted.crashes},
            )  # fmt: skip
            if (give_up := self._give_up.get(counted.kind)) is not None:
                await give_up(self, counted, message)
            else:
                self.alerter.sync_failed(counted.kind, counted.entity_id, None, message)

    def _crm_held(self) -> float:
        """Seconds the CRM takes nothing more (its daily limit is spent); a person is alerted once per hold."""
        transport = self.crm.transport
        held = transport.held_for()
        if held > 0 and transport.held_until != self._alerted_hold:
            self._alerted_hold = transport.held_until
            self.alerter.crm_paused(transport.held_reason)
        return held

    def next_retry(self, job: Job) -> str | None:
        """When a transiently failed job should run again, or None once its retry budget is spent."""
        round_no = job.attempts + 1
        if round_no > self.config.job_retries:
            return None
        steps = self.config.job_backoff
        delay = steps[min(round_no, len(steps)) - 1] * random.uniform(0.8, 1.2)
        return isoformat(parse_iso(self.db.now()) + timedelta(seconds=delay))
