"""Live status for dashboards: a publish/subscribe bus with a bounded queue per subscriber.

On a database shared by several replicas, events travel by NOTIFY: a dashboard connected to any
replica sees what every replica did. Events published together go in one notification. Replicas
skip building events nobody reads; they learn of listeners elsewhere from the heartbeats, and at once
from a notification when a dashboard connects (so its first seconds are not missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from .store.errors import StoreError

if TYPE_CHECKING:
    from .store.database import Database
    from .store.meetings import Meeting
    from .store.users import User

logger = logging.getLogger(__name__)

Event = dict[str, Any]
# Reads what references name, as events with the account allowed to see each (crmsync/event_reads.py).
Reader = Callable[[list[tuple[str, str]]], Awaitable[list[tuple[Event, "str | None"]]]]
BY_REFERENCE = {"user": "user", "meeting": "meeting"}  # event type -> key of the entity it carries
QUEUE_SIZE = 1000
CHANNEL = "crmsync_events"
MAX_PAYLOAD = 7_900  # NOTIFY takes 8,000 bytes
LISTENING = '{"listening":true}'  # not a JSON array: no events, a dashboard connected somewhere


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
        self._heard_until = 0.0  # a dashboard connected elsewhere: believed until the heartbeats show it
        self._hint_seconds = 0.0
        self._reader: Reader | None = None
        self._refs: list[tuple[str, str]] = []  # references received, waiting to be read back
        self._arrived = asyncio.Event()
        self._reading: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        """True while anyone listens, here or on another replica: publishers skip building unread events."""
        return bool(self._subscribers) or self.remote_listeners > 0 or time.monotonic() < self._heard_until

    @property
    def local_listeners(self) -> int:
        """Subscribers on this replica."""
        return len(self._subscribers)

    def attach(self, db: Database, heartbeat: float, reader: Reader) -> None:
        """Carry events through the database when other replicas may share it (heartbeating this often);
        users and meetings travel as references, read back with `reader` where they arrive."""
        if db.shared:
            self._db = db
            self._hint_seconds = 3 * heartbeat  # until a heartbeat of the listener's replica has reported it
            self._reader = reader
            self._reading = asyncio.get_running_loop().create_task(self._read_back(), name="events-read-back")
            db.listen(CHANNEL, self._receive)

    async def detach(self) -> None:
        """Stop reading references back (before the database closes)."""
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    async def announce(self) -> None:
        """A dashboard subscribed here: tell the other replicas now, rather than at the next heartbeat."""
        if self._db is None:
            return
        try:
            await self._db.notify(CHANNEL, LISTENING)
        except StoreError as exc:  # the heartbeat tells them soon enough
            logger.warning("events_not_sent", extra={"error": str(exc)})

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
        if (key := BY_REFERENCE.get(event.get("type", ""))) is not None:
            self._outbox.append({"ref": event["type"], "id": event[key]["id"]})
        else:
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
        if payload == LISTENING:
            self._heard_until = time.monotonic() + self._hint_seconds
            return
        for item in orjson.loads(payload):
            if "ref" in item:
                self._refs.append((item["ref"], item["id"]))
                self._arrived.set()
            else:
                self._offer(item["event"], item["account_id"])

    async def _read_back(self) -> None:
        """Read back what references name, one batch at a time, in arrival order (each entity once)."""
        assert self._reader is not None
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            refs, self._refs = list(dict.fromkeys(self._refs)), []
            if not self._subscribers:
                continue  # nobody here to tell
            try:
                for event, account_id in await self._reader(refs):
                    self._offer(event, account_id)
            except StoreError as exc:  # dashboards here miss this change; the next one brings them up to date
                logger.warning("events_not_read", extra={"error": str(exc), "events": len(refs)})


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
