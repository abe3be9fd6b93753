"""Live status for dashboards: a publish/subscribe bus with a bounded queue per subscriber."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store.meetings import Meeting
    from .store.users import User

logger = logging.getLogger(__name__)

Event = dict[str, Any]
QUEUE_SIZE = 1000


class Subscription:
    """One client's queue; when it falls QUEUE_SIZE events behind, it is told to reload instead."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queue an event without ever waiting: a slow client must not slow the engine."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait({"type": "reload", "reason": "You fell behind the live updates; reload."})


class EventBus:
    """Fans events out to subscribers; an event with an account_id reaches only that account."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def __bool__(self) -> bool:
        """True while anyone listens, so publishers can skip building events nobody will read."""
        return bool(self._subscribers)

    def subscribe(self, account_id: str) -> Subscription:
        """Start receiving events."""
        subscription = Subscription(account_id)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving events."""
        self._subscribers.discard(subscription)

    def publish(self, event: Event, account_id: str | None = None) -> None:
        """Offer an event to every subscriber allowed to see it."""
        for subscription in self._subscribers:
            if account_id is None or subscription.account_id == account_id:
                subscription.offer(event)


def user_event(user: User) -> Event:
    """A user's sync state changed."""
    return {"type": "user", "user": user.public()}


def meeting_event(meeting: Meeting) -> Event:
    """A meeting's sync moved to another stage or ended."""
    return {"type": "meeting", "meeting": meeting.public()}
