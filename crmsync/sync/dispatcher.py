"""Claims due jobs from the table under leases and runs them on a bounded number of worker slots.

Memory holds what is running, never the backlog: a claim takes at most what the free slots can run.
New work wakes the dispatcher at once (a notification from any replica); a poll every second covers
a notification missed and jobs falling due (retries, leases of a replica that died running out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from ..store import jobs
from ..store.database import Database
from ..store.errors import StorageUnavailable, StoreError
from ..store.jobs import Job
from ..timeutil import isoformat, parse_iso

logger = logging.getLogger(__name__)

RunJobs = Callable[[list[Job]], Awaitable[None]]
POLL = 1.0  # seconds between looks at the table when nothing wakes the dispatcher
HELD_POLL = 30.0  # seconds between looks at a CRM that takes nothing until its daily reset


class Dispatcher:
    """One per replica: claim, run on up to `workers` slots of up to `batch_size` jobs, keep the leases."""

    def __init__(
        self, db: Database, run_jobs: RunJobs, owner: str, workers: int, batch_size: int, lease: float,
        held: Callable[[], float] = lambda: 0.0,
    ) -> None:  # fmt: skip
        """held says for how many seconds the CRM takes nothing (a spent daily limit): no claims until then."""
        self._db = db
        self._held = held
        self._run_jobs = run_jobs
        self.owner = owner
        self._workers = workers
        self._batch_size = batch_size
        self._lease = lease
        self._wake = asyncio.Event()
        self._slots: set[asyncio.Task[None]] = set()
        self.running: dict[int, Job] = {}  # claimed jobs, by id, until their run ends
        self.done = 0  # jobs whose run ended, for the replica's heartbeat
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def wake(self) -> None:
        """New work may be due: look at once."""
        self._wake.set()

    def start(self) -> None:
        """Start claiming, and keeping the leases of what runs."""
        self._db.listen(jobs.CHANNEL, lambda _: self._wake.set())
        self._db.on_listening(self._wake.set)
        self._tasks = [
            asyncio.create_task(self._claim_forever(), name="dispatcher"),
            asyncio.create_task(self._keep_leases(), name="lease-keeper"),
        ]

    async def stop(self, timeout: float) -> None:
        """Stop claiming, let running work finish within timeout, cancel the rest, release every lease held."""
        self._closing = True
        self._wake.set()
        claimer = self._tasks[0]
        # A claim under way is let finish (cancelling it would only roll it back), and what it claimed runs.
        await asyncio.wait([claimer], timeout=timeout)
        if self._slots:
            await asyncio.wait(list(self._slots), timeout=timeout)
        for task in [*self._slots, *self._tasks]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        unfinished = len(self.running)
        with contextlib.suppress(StoreError):
            released = await jobs.release_owned(self._db, self.owner)
            logger.info("dispatcher_stopped", extra={"unfinished_jobs": unfinished, "leases_released": released})

    async def _claim_forever(self) -> None:
        while not self._closing:
            free = self._workers - len(self._slots)
            if free <= 0:
                await asyncio.wait(list(self._slots), return_when=asyncio.FIRST_COMPLETED)
                continue
            self._wake.clear()
            if (held := self._held()) > 0:  # the jobs wait in the table, their retry budgets untouched
                await self._sleep(min(held, HELD_POLL))
                continue
            try:
                claimed = await self._claim(free * self._batch_size)
            except StoreError as exc:  # the database is away: look again shortly, the jobs wait in the table
                # Storage trouble was logged once for the episode; other trouble is worth a line each time.
                level = logging.INFO if isinstance(exc, StorageUnavailable) else logging.WARNING
                logger.log(level, "claim_failed", extra={"error": str(exc)})
                await self._sleep(POLL)
                continue
            if not claimed:
                await self._sleep(await self._until_due())
                continue
            for chunk in _chunks(claimed, free, self._batch_size):
                slot = asyncio.create_task(self._run(chunk))
                self._slots.add(slot)
                slot.add_done_callback(self._slots.discard)

    async def _claim(self, limit: int) -> list[Job]:
        now = self._db.now()
        until = isoformat(parse_iso(now) + timedelta(seconds=self._lease))
        claimed = await jobs.claim(self._db, self.owner, limit, now, until)
        for job in claimed:
            self.running[job.id] = job
        return claimed

    async def _until_due(self) -> float:
        """Seconds until the earliest queued job falls due, at most POLL."""
        try:
            due = await jobs.next_due(self._db)
        except StoreError:
            return POLL
        if due is None:
            return POLL
        wait = (parse_iso(due) - parse_iso(self._db.now())).total_seconds()
        # A job already due but leased elsewhere: its lease ends on the next poll at the latest.
        return POLL if wait <= 0 else min(wait, POLL)

    async def _sleep(self, seconds: float) -> None:
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run(self, chunk: list[Job]) -> None:
        try:
            await self._run_jobs(chunk)
        except Exception:  # run_jobs guards each handler; this only keeps a bug from killing the slot
            logger.exception("jobs_crashed", extra={"job_ids": [job.id for job in chunk][:20]})
        finally:
            for job in chunk:
                self.running.pop(job.id, None)
            self.done += len(chunk)
            self._wake.set()  # a slot is free: claim more if there is more

    async def _keep_leases(self) -> None:
        """Extend the leases of running jobs every third of the lease, and say when one was lost."""
        while True:
            await asyncio.sleep(self._lease / 3)
            held = list(self.running)
            if not held:
                continue
            until = isoformat(parse_iso(self._db.now()) + timedelta(seconds=self._lease))
            try:
                kept = await jobs.extend(self._db, self.owner, held, until)
            except StoreError as exc:
                logger.warning("lease_extend_failed", extra={"error": str(exc), "jobs": len(held)})
                continue
            if kept < len(held):
                logger.warning("leases_lost", extra={"held": len(held), "kept": kept})


def _chunks(claimed: list[Job], slots: int, size: int) -> list[list[Job]]:
    """Spread claimed jobs over at most `slots` runs of at most `size` jobs, like kinds together."""
    ordered = sorted(claimed, key=lambda job: job.kind)
    per_slot = min(size, max(1, -(-len(ordered) // slots)))
    return [ordered[i : i + per_slot] for i in range(0, len(ordered), per_slot)]
