"""In-memory users and meetings; every method is synchronous so each change is atomic."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mock_crm.clock import Clock
from mock_crm.errors import Duplicate, InvalidData, NotFound
from mock_crm.records import Meeting, User, new_id

SortKey = tuple[datetime, str]


class Store:
    """Users (with a case-insensitive e-mail index) and meetings, stamped by one strictly rising clock."""

    def __init__(self) -> None:
        """Start empty."""
        self.users: dict[str, User] = {}
        self.meetings: dict[str, Meeting] = {}
        self._emails: dict[str, str] = {}
        self.clock = Clock()

    def get_user(self, crm_id: str) -> User:
        """Return the user or raise NotFound."""
        user = self.users.get(crm_id)
        if user is None:
            raise NotFound(f"No user with crm_id {crm_id[:64]!r}.")
        return user

    def create_user(self, fields: dict[str, str]) -> User:
        """Add a user from validated name/email/phone, or raise Duplicate."""
        self._check_email(fields["email"], None)
        user = User(crm_id=new_id("CRM"), updated_at=self.clock.now(), **fields)
        self.users[user.crm_id] = user
        self._emails[user.email.casefold()] = user.crm_id
        return user

    def update_user(self, crm_id: str, fields: dict[str, str]) -> dict[str, Any]:
        """Apply validated fields; return the ones that changed (updated_at moves only if any did)."""
        user = self.get_user(crm_id)
        if "email" in fields:
            self._check_email(fields["email"], crm_id)
        changed = {key: value for key, value in fields.items() if getattr(user, key) != value}
        if not changed:
            return changed
        if "email" in changed:
            del self._emails[user.email.casefold()]
            self._emails[changed["email"].casefold()] = crm_id
        for key, value in changed.items():
            setattr(user, key, value)
        user.updated_at = self.clock.now()
        return changed

    def delete_user(self, crm_id: str) -> None:
        """Remove a user (freeing its e-mail address) or raise NotFound."""
        user = self.get_user(crm_id)
        del self.users[crm_id]
        del self._emails[user.email.casefold()]

    def list_users(self, since: datetime | None, after: SortKey | None, limit: int) -> tuple[list[User], bool]:
        """Return up to limit users changed after `since` and past `after`, oldest change first, and
        whether more remain."""
        candidates: Iterable[User] = self.users.values()
        if since is not None:
            candidates = (user for user in candidates if user.updated_at > since)
        if after is not None:
            candidates = (user for user in candidates if (user.updated_at, user.crm_id) > after)
        page = heapq.nsmallest(limit + 1, candidates, key=lambda user: (user.updated_at, user.crm_id))
        return page[:limit], len(page) > limit

    def count_users(self, since: datetime | None) -> int:
        """How many users changed after `since` (all of them when None): the listing's total."""
        if since is None:
            return len(self.users)
        return sum(1 for user in self.users.values() if user.updated_at > since)

    def _check_email(self, email: str, own_id: str | None) -> None:
        """Raise Duplicate if another record holds this address (ignoring case)."""
        holder = self._emails.get(email.casefold())
        if holder is not None and holder != own_id:
            raise Duplicate(holder)

    def get_meeting(self, meeting_id: str) -> Meeting:
        """Return the meeting or raise NotFound."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise NotFound(f"No meeting with meeting_id {meeting_id[:64]!r}.")
        return meeting

    def create_meeting(self, fields: dict[str, Any]) -> Meeting:
        """Add a meeting from validated title/starts_at/ends_at."""
        _check_times(fields["starts_at"], fields.get("ends_at"))
        meeting = Meeting(
            meeting_id=new_id("MTG"),
            title=fields["title"],
            starts_at=fields["starts_at"],
            ends_at=fields.get("ends_at"),
            updated_at=self.clock.now(),
        )
        self.meetings[meeting.meeting_id] = meeting
        return meeting

    def update_meeting(self, meeting_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Apply validated meeting fields (title, times, contact_ids); return the ones that changed."""
        meeting = self.get_meeting(meeting_id)
        _check_times(fields.get("starts_at", meeting.starts_at), fields.get("ends_at", meeting.ends_at))
        if "contact_ids" in fields:
            unknown = [crm_id for crm_id in fields["contact_ids"] if crm_id not in self.users]
            if unknown:
                reason = "unknown crm_id: " + ", ".join(crm_id[:64] for crm_id in unknown[:20])
                raise InvalidData("Some contacts do not exist.", {"crm_ids": reason})
        changed = {key: value for key, value in fields.items() if getattr(meeting, key) != value}
        for key, value in changed.items():
            setattr(meeting, key, value)
        if changed:
            meeting.updated_at = self.clock.now()
        return changed


def _check_times(starts_at: datetime, ends_at: datetime | None) -> None:
    """Raise InvalidData when a meeting would end before it starts."""
    if ends_at is not None and ends_at < starts_at:
        raise InvalidData("A meeting cannot end before it starts.", {"ends_at": "must not be before starts_at"})
