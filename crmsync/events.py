"""Live status for dashboards: a publish/subscribe bus with a bounded queue per subscriber.

On a database shared by several replicas, events travel by NOTIFY: a dashboard connected to any
replica sees what every replica did. Events published together go in one notification.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from .store.errors import StoreError

if TYPE_CHECKING:
    from .store.database import Database
    from .store.meetings import Meeting
    from .store.users import User

logger = logging.getLogger(__name__)

Event = dict[str, Any]
QUEUE_SIZE = 1000
CHANNEL = "crmsync_events"
MAX_PAYLOAD = 7_900  # NOTIFY takes 8,000 bytes


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
        self._db: Database | None = None
        self._outbox: list[dict[str, Any]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self.remote_listeners = 0  # subscribers on other replicas, as their last heartbeats said

    def __bool__(self) -> bool:
        """True while anyone listens, here or on another replica: publishers skip building unread events."""
        return bool(self._subscribers) or self.remote_listeners > 0

    @property
    def local_listeners(self) -> int:
        """Subscribers on this replica."""
        return len(self._subscribers)

    def attach(self, db: Database) -> None:
        """Carry events through the database when other replicas may share it."""
        if db.shared:
            self._db = db
            db.listen(CHANNEL, self._receive)

    def subscribe(self, account_id: str) -> Subscription:
        """Start receiving events."""
        subscription = Subscription(account_id)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving events."""
        self._subscribers.discard(subscription)

    def publish(self, event: Event, account_id: str | None = None) -> None:
        """Offer an event to every subscriber allowed to see it, on every replica."""
        if self._db is None:
            self._offer(event, account_id)
            return
        if not self._outbox:
            task = asyncio.get_running_loop().create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        self._outbox.append({"account_id": account_id, "event": event})

    def _offer(self, event: Event, account_id: str | None) -> None:
        for subscription in self._subscribers:
            if account_id is None or subscription.account_id == account_id:
                subscription.offer(event)

    async def _send(self) -> None:
        """Send what was published since the last send, as few notifications as fit."""
        await asyncio.sleep(0)  # let the rest of this turn's events join
        items, self._outbox = self._outbox, []
        assert self._db is not None
        for payload in _payloads(items):
            try:
                await self._db.notify(CHANNEL, payload)
            except StoreError as exc:  # other replicas miss these; dashboards here still get them
                logger.warning("events_not_sent", extra={"error": str(exc)})
                self._receive(payload)

    def _receive(self, payload: str) -> None:
        for item in orjson.loads(payload):
            self._offer(item["event"], item["account_id"])


def _payloads(items: list[dict[str, Any]]) -> list[str]:
    """JSON arrays of items, each under NOTIFY's size limit; an item too big alone is left out (logged)."""
    payloads, batch, size = [], [], 2
    for item in items:
        encoded = orjson.dumps(item)
        if len(encoded) + 2 > MAX_PAYLOAD:
            logger.warning("event_too_large", extra={"type": item["event"].get("type"), "bytes": len(encoded)})
            continue
        if size + len(encoded) + 1 > MAX_PAYLOAD:
            payloads.append(b"[" + b",".join(batch) + b"]")
            batch, size = [], 2
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        payloads.append(b"[" + b",".join(batch) + b"]")
    return [payload.decode() for payload in payloads]


def user_event(user: User) -> Event:
    """A user's sync state changed."""
    return {"type": "user", "user": user.public()}


def meeting_event(meeting: Meeting) -> Event:
    """A meeting's sync moved to another stage or ended."""
    return {"type": "meeting", "meeting": meeting.public()}
