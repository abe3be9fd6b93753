"""Worker tasks fed by an asyncio.Queue of job ids; the sync_jobs table remains the source of truth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

RunJobs = Callable[[list[int]], Awaitable[None]]


class WorkerPool:
    """Runs queued job ids on N workers, never the same job on two workers at once.

    A worker takes every due id up to batch_size at once, so a backlog moves in batches while a
    lone new job still starts at once.
    """

    def __init__(self, run_jobs: RunJobs, workers: int, batch_size: int = 1) -> None:
        self._run_jobs = run_jobs
        self._size = workers
        self._batch_size = batch_size
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()  # ids waiting in the queue, so a job is queued at most once
        self._running: set[int] = set()
        self._again: set[int] = set()  # ids re-armed while running: run once more when done
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return self._queue.qsize()

    def submit(self, job_id: int) -> None:
        """Make a job due now."""
        if self._closing:
            return
        if (timer := self._timers.pop(job_id, None)) is not None:
            timer.cancel()
        if job_id in self._running:
            self._again.add(job_id)
        elif job_id not in self._queued:
            self._queued.add(job_id)
            self._queue.put_nowait(job_id)

    def submit_later(self, job_id: int, delay: float) -> None:
        """Make a job due after a delay (replacing any earlier timer for it)."""
        if self._closing:
            return
        if (timer := self._timers.pop(job_id, None)) is not None:
            timer.cancel()
        if delay <= 0:
            self.submit(job_id)
            return
        self._timers[job_id] = asyncio.get_running_loop().call_later(delay, self._fire, job_id)

    def _fire(self, job_id: int) -> None:
        self._timers.pop(job_id, None)
        self.submit(job_id)

    def start(self) -> None:
        """Start the worker tasks."""
        self._tasks = [asyncio.create_task(self._work(), name=f"sync-worker-{i}") for i in range(self._size)]

    async def stop(self, timeout: float) -> None:
        """Stop taking work, let running jobs finish within timeout, then cancel what is left."""
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            if task not in self._busy:
                task.cancel()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if unfinished := len(self._queued) + len(self._running):
            logger.info("workers_stopped", extra={"unfinished_jobs": unfinished})

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._closing:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._queued.difference_update(batch)
            self._running.update(batch)
            self._busy.add(task)
            try:
                await self._run_jobs(batch)
            except Exception:
                # run_jobs handles its own failures; this only guards the worker against a bug.
                logger.exception("jobs_crashed", extra={"job_ids": batch[:20]})
            finally:
                self._busy.discard(task)
                self._running.difference_update(batch)
            for job_id in batch:
                if job_id in self._again:
                    self._again.discard(job_id)
                    self.submit(job_id)
