"""The store's view of a database: transactions, savepoints and queries, the same on every engine."""

from __future__ import annotations

import abc
import itertools
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from ..timeutil import isoformat, utcnow
from .errors import StorageUnavailable, TransientConflict
from .group_commit import GroupCommit
from .health import StorageHealth

logger = logging.getLogger(__name__)
T = TypeVar("T")
PROBE_BYTES = 64 * 1024
Listener = Callable[[str], None]


class Row(Protocol):
    """A result row: by column name or by position."""

    def __getitem__(self, key: str | int) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Reader(abc.ABC):
    """Queries: a connection inside a transaction, or the database's reads as last committed."""

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """All rows of a query."""

    @abc.abstractmethod
    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or None."""

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class Connection(Reader):
    """One connection inside a transaction."""

    engine: str
    # True where write transactions run one at a time (SQLite): a write transaction then sees everything
    # committed before it and nothing commits beside it, so reads need no row lock before them.
    one_writer: bool = False

    def __init__(self) -> None:
        self._savepoints = itertools.count()

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row of arguments."""

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested unit: an error inside undoes only what the unit wrote, then propagates."""
        name = f"sp{next(self._savepoints)}"
        await self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            await self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        await self.execute(f"RELEASE SAVEPOINT {name}")

    @abc.abstractmethod
    async def notify(self, channel: str, payload: str = "") -> None:
        """Tell every replica's listeners on the channel, once this transaction commits."""


class Database(Reader):
    """A database: reads outside transactions, write transactions, and grouped commits.

    Storage trouble (a full disk, a server gone) surfaces as StorageUnavailable, noted once per
    episode in `storage`, which the next successful write ends.
    """

    engine: str
    # Whether several processes may serve this database at once (PostgreSQL), or one only (a SQLite file).
    shared: bool

    def __init__(self, parallel_batches: int = 1) -> None:
        self.clock_offset = 0.0  # seconds to add to this machine's clock to read the database's
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._catch_ups: list[Callable[[], None]] = []
        self.storage = StorageHealth()
        self.parallel_batches = parallel_batches  # group-commit batches in flight at once (1: one writer)
        self.group: GroupCommit[tuple[LockOrder, Unit[Any]], Any] = GroupCommit(
            self.transaction, run_units, parallel=parallel_batches
        )
        self.wrote = False  # set by _begin: whether the last transaction changed anything

    @asynccontextmanager
    async def transaction(self, durable: bool = True) -> AsyncIterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on any error.

        durable=False for bookkeeping that a crash may lose without harm (claims, leases, heartbeats):
        its commit does not wait for the disk.
        """
        try:
            async with self._begin(durable) as conn:
                yield conn
        except StorageUnavailable as exc:
            self.storage.failed(exc.reason)
            raise
        if self.wrote:
            self.storage.wrote()

    async def run(self, body: Callable[[Connection], Awaitable[T]], attempts: int = 3) -> T:
        """Run body in a transaction; when concurrent transactions collided (a deadlock), run it again.

        For work that locks several rows whose order cannot be fixed in advance (a batch of outcomes,
        a page of the sweep); body must be safe to run again from the start.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as conn:
                    return await body(conn)
            except TransientConflict:
                if attempt == attempts:
                    raise
                logger.warning("transaction_conflict_retried", extra={"attempt": attempt})
        raise AssertionError("unreachable")

    @abc.abstractmethod
    def _begin(self, durable: bool) -> AbstractAsyncContextManager[Connection]:
        """The engine's transaction; sets self.wrote before it ends."""

    def now(self) -> str:
        """The time by the database's clock (leases and due times compare with it on every replica)."""
        return isoformat(utcnow() + timedelta(seconds=self.clock_offset))

    async def measure_clock(self) -> None:
        """Measure how far this machine's clock is from the database's."""

    def listen(self, channel: str, listener: Listener) -> None:
        """Call listener(payload) for every notification on the channel, from any replica (this one too)."""
        self._listeners[channel].append(listener)

    def on_listening(self, catch_up: Callable[[], None]) -> None:
        """Call catch_up() whenever notifications start flowing after a time they may have been missed
        (PostgreSQL's LISTEN connection came up, or back): what they would have said must be looked up."""
        self._catch_ups.append(catch_up)

    def _listening_started(self) -> None:
        for catch_up in self._catch_ups:
            try:
                catch_up()
            except Exception:  # one broken callback must not stop the others
                logger.exception("catch_up_failed")

    @abc.abstractmethod
    async def notify(self, channel: str, payload: str = "") -> None:
        """Tell every replica's listeners on the channel now (outside any transaction)."""

    def _dispatch(self, channel: str, payload: str) -> None:
        for listener in self._listeners.get(channel, ()):
            try:
                listener(payload)
            except Exception:  # one broken listener must not stop the others
                logger.exception("listener_failed", extra={"channel": channel})

    async def check(self) -> None:
        """Raise StorageUnavailable unless the database answers and takes writes.

        After a write failed for lack of storage, a check makes one small real write of its own once
        no write has been tried for a while: a replica taken out of rotation still sees space come back.
        """
        probe = self.storage.probe_due()
        async with self.transaction() as conn:
            if probe:  # as much as an ordinary write needs, so that leftover slack in a file does not pass for room
                await conn.execute(
                    "INSERT INTO checkpoints (name, value, updated_at) VALUES ('readiness_probe', $1, $2)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    "x" * PROBE_BYTES, self.now(),
                )  # fmt: skip
                await conn.execute("DELETE FROM checkpoints WHERE name = 'readiness_probe'")
            else:
                await conn.execute("SELECT 1")
        if self.storage.error is not None:
            raise StorageUnavailable(f"the last write failed: {self.storage.error}")

    async def grouped(self, unit: Unit[T], order: LockOrder = ("", "")) -> T:
        """Run a unit in the next shared transaction (group commit), in a savepoint of its own; its result.

        A unit that locks a user's row passes where that row comes in the lock order (users.lock_order):
        the units of a batch lock their rows in that order, as every other transaction does.
        """
        result: T = await self.group.run((order, unit))
        return result

    async def group_close(self) -> None:
        """Commit grouped work still waiting."""
        await self.group.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit grouped work still waiting, then close every connection."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data lives, without any password (for logs and /readyz)."""


Unit = Callable[[Connection], Awaitable[T]]
LockOrder = tuple[str, str]  # (crm_id, user id): see users.lock_order


async def run_units(conn: Connection, units: list[tuple[LockOrder, Unit[Any]]]) -> list[Any]:
    """Run units of work in one transaction in lock order: a failing unit fails alone.

    The batch runs in one savepoint first (two statements, however many units); only when a unit
    fails is that undone and the batch run again with a savepoint per unit. A unit touches nothing
    but the connection, so running it again is safe. Storage trouble fails the whole batch: the
    transaction itself cannot commit.
    """
    # Rows stay locked until the commit: units that took them in arrival order would wait in a circle
    # with a sweep page or a batch of outcomes that locks the same users in lock order (a deadlock).
    ordered = sorted(range(len(units)), key=lambda i: units[i][0])
    results: list[Any] = [None] * len(units)
    try:
        async with conn.savepoint():
            for index in ordered:
                results[index] = await units[index][1](conn)
        return results
    except StorageUnavailable:
        raise
    except Exception:  # noqa: S110 (some unit failed: find which, below)
        pass
    for index in ordered:
        try:
            async with conn.savepoint():
                results[index] = await units[index][1](conn)
        except StorageUnavailable:
            raise
        except Exception as exc:  # this unit's failure is its caller's, not the batch's
            results[index] = exc
    return results
