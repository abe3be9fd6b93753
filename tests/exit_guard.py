"""The run ends when its tests end: a thread a test left behind may not keep the interpreter alive.

aiosqlite runs each connection on a non-daemon thread, so one connection left unclosed (it happened: a failed
open leaked its writer) kept pytest from exiting after printing its summary, and CI waited until its limit.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

GRACE = 10.0  # seconds for leftover threads to finish by themselves
# Pools the interpreter itself stops at exit: their idle workers are not leaks.
_POOLS = ("ThreadPoolExecutor-", "asyncio_")

_status: list[int] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    leftover = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and not t.name.startswith(_POOLS)
    ]
    deadline = time.monotonic() + GRACE
    for thread in leftover:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t for t in leftover if t.is_alive()]
    if not alive:
        return
    names = ", ".join(t.name for t in alive)
    sys.stdout.flush()
    sys.stderr.write(f"\nexit_guard: {len(alive)} thread(s) a test left running would keep this run alive: {names}\n")
    sys.stderr.flush()
    os._exit(max(_status[-1] if _status else 1, 1))  # a leak is a failure even when every test passed
