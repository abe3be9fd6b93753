"""Group commit: units of work that arrive together share one transaction and one fsync.

Each unit runs inside its own SAVEPOINT, so one that fails is rolled back alone and its caller
gets the exception, while the others commit. A caller's await returns only after the commit.
A failure of the storage itself (disk full) fails the whole batch: SQLite may have rolled it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import aiosqlite

from .errors import StorageUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[aiosqlite.Connection], Awaitable[Any]]
Waiting = tuple[Unit, bool, "asyncio.Future[Any]"]
Transaction = Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
# The error that ends the whole batch for a unit's exception (storage trouble), or None when it is the unit's own.
Fatal = Callable[[Exception], Exception | None]


class GroupCommit:
    """Batches units of work into shared transactions, one batch at a time."""

    def __init__(self, transaction: Transaction, fatal: Fatal = lambda _: None, max_batch: int = 256) -> None:
        self._transaction = transaction
        self._fatal = fatal
        self._max_batch = max_batch
        self._waiting: list[Waiting] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self, unit: Callable[[aiosqlite.Connection], Awaitable[T]], savepoint: bool = True) -> T:
        """Run a unit of work in the next shared transaction; return its result once committed.

        savepoint=False saves two trips to the database thread; only for a unit whose first write is
        the only statement that can fail (SQLite undoes a failed statement by itself).
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((unit, savepoint, future))
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="group-commit")
        # Shielded: a caller that goes away must not cancel a transaction its neighbours share.
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Commit what is waiting, then stop."""
        if self._task is not None:
            while self._waiting:
                await self._commit_next()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                await self._commit_next()

    async def _commit_next(self) -> None:
        batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        outcomes: list[tuple[bool, Any]] = []
        try:
            async with self._transaction() as conn:
                async for outcome in _units(conn, batch, self._fatal):
                    outcomes.append(outcome)
        except Exception as exc:  # the commit itself failed: nothing of this batch is stored
            if not isinstance(exc, StorageUnavailable):  # that one is logged once per episode, where it is noted
                logger.exception("group_commit_failed", extra={"units": len(batch)})
            outcomes = [(False, exc)] * len(batch)
        for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(value) if ok else future.set_exception(value)


async def _units(conn: aiosqlite.Connection, batch: list[Waiting], fatal: Fatal) -> AsyncIterator[tuple[bool, Any]]:
    for unit, savepoint, _ in batch:
        if savepoint:
            await conn.execute("SAVEPOINT unit")
        try:
            value = await unit(conn)
        except Exception as exc:
            if (broken := fatal(exc)) is not None:
                raise broken from exc
            # This unit's failure is its caller's, not the batch's.
            if savepoint:
                await conn.execute("ROLLBACK TO unit")
                await conn.execute("RELEASE unit")
            yield False, exc
            continue
        if savepoint:
            await conn.execute("RELEASE unit")
        yield True, value
