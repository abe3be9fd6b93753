"""Events by reference across replicas: a replica told "user X changed" reads X as it is now.

Replicas publish after their commits, so notifications from two replicas about one user or meeting may
arrive in another order than the commits were made; a snapshot carried in the notification could then
show an older state last (a dashboard stuck at stage 3 of a finished meeting). A reference read back
on arrival is never older than what the same replica showed before: reads are made one batch after
another, each after the notifications that caused it, so the last one shows the last commit.
"""

from __future__ import annotations

from .events import Event, meeting_event, user_event
from .store import users
from .store.database import Database
from .store.meetings import MeetingStore

Ref = tuple[str, str]  # ("user" | "meeting", id)


class EventReader:
    """Reads the users and meetings named by references, as events with the account that may see them."""

    def __init__(self, db: Database, meetings: MeetingStore) -> None:
        self._db = db
        self._meetings = meetings

    async def __call__(self, refs: list[Ref]) -> list[tuple[Event, str | None]]:
        found = await users.get_many(self._db, [entity_id for kind, entity_id in refs if kind == "user"])
        events: list[tuple[Event, str | None]] = []
        for kind, entity_id in refs:
            if kind == "user" and (user := found.get(entity_id)) is not None:
                events.append((user_event(user), None))
            elif kind == "meeting" and (meeting := await self._meetings.get(entity_id)) is not None:
                events.append((meeting_event(meeting), meeting.account_id))
        return events
