"""Group commit: work that arrives together shares one transaction and one fsync.

The skeleton (queue, batches, results handed back after the commit) is the same for every use; what a
batch does in its transaction is the caller's: new users go in with a few multi-row statements, webhook
units each in a savepoint. A caller's await returns only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import StorageUnavailable, TransientConflict

if TYPE_CHECKING:
    from .database import Connection

logger = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 (an item of work)
R = TypeVar("R")
MAX_TRIES = 3  # an item whose unit collided with another transaction (a deadlock) runs again, this often
Transaction = Callable[[], AbstractAsyncContextManager["Connection"]]
# Runs a batch in the open transaction; returns one result per item, an Exception for an item that failed.
RunBatch = Callable[["Connection", list[Any]], Awaitable[list[Any]]]


class GroupCommit(Generic[I, R]):
    """Batches items into shared transactions, up to `parallel` batches at a time.

    One at a time on SQLite (one writer). A server (PostgreSQL) runs several: a batch's units run one
    after another on its connection, so while one batch waits for its round trips or its commit's
    fsync, the next runs on another connection.
    """

    def __init__(self, transaction: Transaction, run_batch: RunBatch, max_batch: int = 256, parallel: int = 1) -> None:
        self._transaction = transaction
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._waiting: list[tuple[I, asyncio.Future[R], int]] = []  # item, its caller's future, tries so far
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(parallel)
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, item: I) -> R:
        """Add an item to the next shared transaction; return its result once committed, or raise its error."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future, 0))
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="group-commit")
        # Shielded: a caller that goes away must not cancel a transaction its neighbours share.
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Commit what is waiting, then stop."""
        if self._task is not None:
            self._task.cancel()  # it only ever waits for work or a free slot, never inside a transaction
            await asyncio.gather(self._task, return_exceptions=True)
            while self._running or self._waiting:
                if self._running:
                    await asyncio.wait(set(self._running))
                else:
                    await self._commit(self._take())

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                await self._slots.acquire()
                if not self._waiting:
                    self._slots.release()
                    break
                task = asyncio.create_task(self._commit(self._take()), name="group-commit-batch")
                self._running.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    def _take(self) -> list[tuple[I, asyncio.Future[R], int]]:
        batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        return batch

    async def _commit(self, batch: list[tuple[I, asyncio.Future[R], int]]) -> None:
        results: list[Any]
        try:
            async with self._transaction() as conn:
                results = await self._run_batch(conn, [item for item, _, _ in batch])
        except (StorageUnavailable, TransientConflict) as exc:  # noted by the database; retried or a 503
            results = [exc] * len(batch)
        except Exception as exc:  # the commit itself failed: nothing of this batch is stored
            logger.exception("group_commit_failed", extra={"items": len(batch)})
            results = [exc] * len(batch)
        for (item, future, tries), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, TransientConflict) and tries + 1 < MAX_TRIES:
                logger.warning("transaction_conflict_retried", extra={"attempt": tries + 1})
                self._waiting.append((item, future, tries + 1))  # collided with another transaction: again
                self._wakeup.set()
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
