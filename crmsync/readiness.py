"""Readiness: the database and the CRM checked side by side within a bound, answered from a short cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

from .crm.adapter import CrmAdapter
from .crm.errors import CrmError
from .keys import crm_key, db_key, readiness_key
from .store.database import Database
from .store.errors import StorageUnavailable

CHECK_TIMEOUT = 1.5  # per check; both run at once, so /readyz answers within 2 s
CACHE_FOR = 1.0  # a flood of probes costs one round of checks a second
CRM_PROBE_AFTER = 15.0  # with no real exchange for this long, the check makes one (a one-record listing)

Report = tuple[int, dict[str, Any]]


class _Shared:
    """One run of a check at a time; callers wait for it within a bound, the run itself is never cancelled.

    Never cancelled because cancelling a write transaction half way is worse than letting it finish.
    """

    def __init__(self, run: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self._run = run
        self._task: asyncio.Task[Any] | None = None

    async def wait(self, timeout: float) -> Any:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
            self._task.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class Readiness:
    """Answers /readyz: not ready when the database cannot take writes; a failing CRM is reported, not fatal."""

    def __init__(self, db: Database, crm: CrmAdapter) -> None:
        self._db, self._crm = db, crm
        self._db_check = _Shared(db.check)
        self._crm_probe = _Shared(lambda: crm.list_contacts(None, None, limit=1))
        self._round = _Shared(self._check)
        self._cached: tuple[float, Report] | None = None

    async def report(self) -> Report:
        """The HTTP status and body of the latest round of checks, at most CACHE_FOR seconds old."""
        if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_FOR:
            return self._cached[1]
        return await self._round.wait(2 * CHECK_TIMEOUT)  # each check is bounded; this bound is a backstop

    async def close(self) -> None:
        """Stop checks still running."""
        for shared in (self._round, self._db_check, self._crm_probe):
            await shared.close()

    async def _check(self) -> Report:
        (db_error, database), (crm_error, crm) = await asyncio.gather(self._database(), self._crm_state())
        checks = {"database": _verdict(db_error), "crm": _verdict(crm_error)}
        status = "not_ready" if db_error else "degraded" if crm_error else "ready"
        body = {"status": status, "checks": checks, "details": {"database": database, "crm": crm}}
        report = (503 if db_error else 200, body)
        self._cached = (time.monotonic(), report)
        return report

    async def _database(self) -> tuple[str | None, dict[str, Any]]:
        try:
            await self._db_check.wait(CHECK_TIMEOUT)
            error = None
        except TimeoutError:
            error = f"The database did not answer within {CHECK_TIMEOUT:g} s."
        except StorageUnavailable as exc:
            error = f"{exc.reason[:1].upper()}{exc.reason[1:]}."
        except Exception as exc:  # a probe reports any failure instead of raising it
            error = f"The database check failed: {type(exc).__name__}: {str(exc)[:200]}"
        storage = self._db.storage
        return error, {"failing_since": storage.failing_since, "last_error": error}

    async def _crm_state(self) -> tuple[str | None, dict[str, Any]]:
        health = self._crm.transport.health
        error = None
        if health.idle_for() >= CRM_PROBE_AFTER:
            try:
                await self._crm_probe.wait(CHECK_TIMEOUT)
            except TimeoutError:
                error = f"The CRM did not answer within {CHECK_TIMEOUT:g} s."
            except CrmError:
                pass  # its outcome is in health already
        if error is None and not health.ok:
            error = health.last_error or "The CRM has not answered yet."
        return error, health.to_json()


def _verdict(error: str | None) -> str:
    return "ok" if error is None else f"failed: {error}"


async def readiness_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the readiness checker, once the database and the CRM client exist."""
    readiness = app[readiness_key] = Readiness(app[db_key], app[crm_key])
    yield
    await readiness.close()
