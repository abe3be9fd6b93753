"""Which users have a push on the wire, so that news from the CRM about them can wait for its outcome."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class InFlight:
    """Counts pushes per user; settled() waits until a user has none."""

    def __init__(self) -> None:
        self._count: Counter[str] = Counter()
        self._idle: dict[str, asyncio.Event] = {}

    def __bool__(self) -> bool:
        """True while any push is in flight."""
        return bool(self._count)

    @contextmanager
    def hold(self, user_ids: Iterable[str]) -> Iterator[None]:
        """Mark users as being pushed for the duration of the block."""
        held = list(user_ids)
        for user_id in held:
            self._count[user_id] += 1
            self._idle.setdefault(user_id, asyncio.Event())
        try:
            yield
        finally:
            for user_id in held:
                self._count[user_id] -= 1
                if self._count[user_id] <= 0:
                    del self._count[user_id]
                    self._idle.pop(user_id).set()

    async def settled(self, user_id: str, timeout: float) -> bool:
        """Wait until no push for the user is in flight; False if one still is after timeout."""
        idle = self._idle.get(user_id)
        if idle is None:
            return True
        try:
            await asyncio.wait_for(idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
