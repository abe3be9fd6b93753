"""Queries on meetings and their attendees; every write invalidates the cached row."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from ..cache import Cache
from ..timeutil import now_iso
from . import jobs
from .database import Connection, Database, Row
from .dialect import marks

STAGES = ("contacts", "meeting", "associations")
STAGE_JOBS = ("meeting_contacts", "meeting_push", "meeting_associations")  # the sync_jobs kind of each stage
CACHE_CHANNEL = "crmsync_meetings"
_STAGE_COLUMNS = tuple(f"{stage}_{edge}_at" for stage in STAGES for edge in ("started", "finished"))


@attrs.frozen
class Meeting:
    """A meeting, its attendees (user ids, in the order given) and where its CRM sync stands."""

    id: str
    account_id: str
    title: str
    starts_at: str
    ends_at: str | None
    attendee_ids: tuple[str, ...]
    crm_meeting_id: str | None
    in_progress_sync_status: int | None
    last_sync_success: bool | None
    last_sync_at: str | None
    last_sync_error: str | None
    stage_times: dict[str, str | None]
    created_at: str
    updated_at: str
    next_retry_at: str | None = None  # while a failed stage waits for its next try

    @classmethod
    def from_row(cls, row: Row, attendee_ids: tuple[str, ...], next_retry_at: str | None = None) -> Meeting:
        """Build from a meetings row and its attendees."""
        success = row["last_sync_success"]
        return cls(
            id=row["id"], account_id=row["account_id"], title=row["title"], starts_at=row["starts_at"],
            ends_at=row["ends_at"], attendee_ids=attendee_ids, crm_meeting_id=row["crm_meeting_id"],
            in_progress_sync_status=row["in_progress_sync_status"],
            last_sync_success=None if success is None else bool(success), last_sync_at=row["last_sync_at"],
            last_sync_error=row["last_sync_error"], stage_times={c: row[c] for c in _STAGE_COLUMNS},
            created_at=row["created_at"], updated_at=row["updated_at"], next_retry_at=next_retry_at,
        )  # fmt: skip

    @property
    def stage(self) -> str | None:
        """The name of the stage running now."""
        return None if self.in_progress_sync_status is None else STAGES[self.in_progress_sync_status - 1]

    def public(self) -> dict[str, Any]:
        """The JSON the API returns."""
        stages = {
            stage: {"started_at": self.stage_times[f"{stage}_started_at"],
                    "finished_at": self.stage_times[f"{stage}_finished_at"]}
            for stage in STAGES
        }  # fmt: skip
        return {
            "id": self.id, "title": self.title, "starts_at": self.starts_at, "ends_at": self.ends_at,
            "attendee_ids": list(self.attendee_ids), "crm_meeting_id": self.crm_meeting_id,
            "in_progress_sync_status": self.in_progress_sync_status, "stage": self.stage,
            "last_sync_success": self.last_sync_success, "last_sync_at": self.last_sync_at,
            "last_sync_error": self.last_sync_error, "next_retry_at": self.next_retry_at, "stages": stages,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }  # fmt: skip


class MeetingStore:
    """Reads through an in-process cache; all writes go through here, so the cache stays true."""

    def __init__(self, db: Database, cache_size: int = 10_000) -> None:
        self.db = db
        self.cache: Cache[str, Meeting] = Cache(cache_size)
        # A meeting written by any replica is dropped from every replica's cache once the write commits.
        db.listen(CACHE_CHANNEL, lambda meeting_id: self.cache.invalidate(meeting_id))
        db.on_listening(self.cache.clear)  # invalidations missed while the LISTEN connection was down

    async def changed(self, conn: Connection, meeting_id: str) -> None:
        """Inside a write transaction: every replica forgets its cached copy once this commits."""
        self.cache.invalidate(meeting_id)
        await conn.notify(CACHE_CHANNEL, meeting_id)

    async def missing_users(self, user_ids: list[str]) -> list[str]:
        """The ids among these that name no user."""
        if not user_ids:
            return []
        sql = f"SELECT id FROM users WHERE id IN ({marks(len(user_ids))}) AND deleted_at IS NULL"  # noqa: S608
        found = {row[0] for row in await self.db.fetch(sql, *user_ids)}
        return [user_id for user_id in user_ids if user_id not in found]

    async def create(self, account_id: str, fields: dict[str, Any]) -> Meeting:
        """Insert a meeting with its attendees."""
        meeting_id, now = str(uuid.uuid4()), now_iso()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO meetings (id, account_id, title, starts_at, ends_at, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $6)",
                meeting_id, account_id, fields["title"], fields["starts_at"], fields.get("ends_at"), now,
            )  # fmt: skip
            await _set_attendees(conn, meeting_id, fields.get("attendee_ids", []))
            await self.changed(conn, meeting_id)
        return await self._load(meeting_id)  # type: ignore[return-value]

    async def update(self, meeting: Meeting, fields: dict[str, Any]) -> Meeting:
        """Change some fields (and the attendee list when given); the others keep their latest values."""
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                "SELECT title, starts_at, ends_at FROM meetings WHERE id = $1 FOR UPDATE", meeting.id
            )
            if row is not None:
                title, starts_at, ends_at = (fields.get(k, row[k]) for k in ("title", "starts_at", "ends_at"))
                await conn.execute(
                    "UPDATE meetings SET title = $1, starts_at = $2, ends_at = $3, updated_at = $4 WHERE id = $5",
                    title, starts_at, ends_at, now_iso(), meeting.id,
                )  # fmt: skip
                if "attendee_ids" in fields:
                    await _set_attendees(conn, meeting.id, fields["attendee_ids"])
                await self.changed(conn, meeting.id)
        self.cache.invalidate(meeting.id)
        return await self._load(meeting.id)  # type: ignore[return-value]

    async def delete(self, meeting_id: str) -> bool:
        """Delete a meeting and its attendee list, and drop its queued stage jobs; False if it is unknown.

        A stage running now finishes its CRM call, then finds the meeting gone and abandons its job.
        """
        now = now_iso()
        async with self.db.transaction() as conn:
            if await conn.fetchrow("SELECT id FROM meetings WHERE id = $1 FOR UPDATE", meeting_id) is None:
                return False
            for kind in STAGE_JOBS:
                await jobs.cancel(conn, kind, meeting_id, now)
            await conn.execute("DELETE FROM meeting_attendees WHERE meeting_id = $1", meeting_id)
            await conn.execute("DELETE FROM meetings WHERE id = $1", meeting_id)
            await self.changed(conn, meeting_id)
        self.cache.invalidate(meeting_id)
        return True

    async def get(self, meeting_id: str) -> Meeting | None:
        """A meeting as last committed, from the cache when it is there."""
        return self.cache.get(meeting_id) or await self._load(meeting_id)

    async def _load(self, meeting_id: str) -> Meeting | None:
        since = self.cache.invalidations  # a write that lands while we read must not be undone by our put
        # The running stage's next try comes in the same statement, so both are read from one snapshot: a
        # stage that ends between two reads must not show its old retry time beside its new outcome.
        stages = marks(len(STAGE_JOBS), 2)
        sql = (
            "SELECT m.*, (SELECT j.run_after FROM sync_jobs j WHERE j.entity_id = m.id"  # noqa: S608 (placeholders only)
            f" AND j.kind IN ({stages}) AND j.state = 'queued' AND j.attempts > 0"
            " ORDER BY j.run_after DESC LIMIT 1) AS stage_retry_at FROM meetings m WHERE m.id = $1"
        )
        row = await self.db.fetchrow(sql, meeting_id, *STAGE_JOBS)
        if row is None:
            return None
        attendees = await self.db.fetch(
            "SELECT user_id FROM meeting_attendees WHERE meeting_id = $1 ORDER BY position", meeting_id
        )
        # When the running stage tries again, if its last try failed (a stage job's first try has attempts 0).
        retry_at = row["stage_retry_at"] if row["in_progress_sync_status"] is not None else None
        meeting = Meeting.from_row(row, tuple(a[0] for a in attendees), retry_at)
        self.cache.put(meeting_id, meeting, since)
        return meeting

    async def list_for(self, account_id: str, limit: int, after: int) -> tuple[list[Meeting], int | None]:
        """A page of the account's meetings in creation order after the seq cursor."""
        rows = await self.db.fetch(
            "SELECT id, seq FROM meetings WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            account_id, after, limit + 1,
        )  # fmt: skip
        page = [m for row in rows[:limit] if (m := await self.get(row["id"])) is not None]
        return page, rows[limit - 1]["seq"] if len(rows) > limit else None


async def _set_attendees(conn: Connection, meeting_id: str, user_ids: list[str]) -> None:
    await conn.execute("DELETE FROM meeting_attendees WHERE meeting_id = $1", meeting_id)
    await conn.executemany(
        "INSERT INTO meeting_attendees (meeting_id, user_id, position) VALUES ($1, $2, $3)",
        [(meeting_id, user_id, i) for i, user_id in enumerate(dict.fromkeys(user_ids))],
    )
