"""The three stages of a meeting's sync, one durable outbox job each: contacts, meeting, associations."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..crm.attempts import Attempt
from ..crm.errors import CrmError, CrmNotFound, CrmRejected, CrmUnavailable
from ..events import meeting_event
from ..store import jobs, meeting_runs, users
from ..store.jobs import Job, LeaseLost
from ..store.meetings import STAGES, Meeting
from ..timeutil import now_iso
from .engine import SyncEngine
from .settle import settled
from .user_push import INTERNAL, push_user

logger = logging.getLogger(__name__)

Stage = Callable[[SyncEngine, Meeting, list[Attempt]], Awaitable[dict[str, Any]]]


async def _ensure_contacts(engine: SyncEngine, meeting: Meeting, tries: list[Attempt]) -> dict[str, Any]:
    """Stage 1: every attendee exists in the CRM; one that has no crm_id yet is pushed now (here, or by
    the replica already pushing it)."""
    armed: dict[str, int] = {}
    for user in (await users.get_many(engine.db, list(meeting.attendee_ids))).values():
        if user.crm_id is None:
            async with engine.db.transaction() as conn:
                armed[user.id] = await jobs.upsert(conn, jobs.USER_PUSH, user.id, now_iso())
            await engine.run_now(armed[user.id], push_user)
    await settled(engine.db, list(armed))
    for user in (await users.get_many(engine.db, list(armed))).values():
        if user.crm_id is None:
            [job] = await jobs.get_many(engine.db, [armed[user.id]])
            reason = f"contact {user.email}: {user.last_error or 'not synced yet'}"
            if job.state == "failed":
                raise CrmRejected(f"The CRM rejected {reason}", 400)
            raise CrmUnavailable(f"Could not sync {reason}")
    return {}


async def _push_meeting(engine: SyncEngine, meeting: Meeting, tries: list[Attempt]) -> dict[str, Any]:
    """Stage 2: create the meeting in the CRM, or set its fields when it is there already."""
    fields = {"title": meeting.title, "starts_at": meeting.starts_at, "ends_at": meeting.ends_at}
    if meeting.crm_meeting_id is not None:
        try:
            await engine.crm.update_meeting(meeting.crm_meeting_id, fields, tries)
        except CrmNotFound:
            raise CrmRejected("The meeting was deleted in the CRM.", 404) from None
        return {}
    # The key follows the content: a retry after a lost reply replays, an edited meeting is a new request.
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    created = await engine.crm.create_meeting(fields, f"crmsync-meeting-{meeting.id}-{digest}", tries)
    return {"crm_meeting_id": created.meeting_id}


async def _link_contacts(engine: SyncEngine, meeting: Meeting, tries: list[Attempt]) -> dict[str, Any]:
    """Stage 3: the CRM meeting lists exactly the attendees' contacts."""
    attendees = await users.get_many(engine.db, list(meeting.attendee_ids))
    crm_ids = [attendees[uid].crm_id for uid in meeting.attendee_ids if uid in attendees and attendees[uid].crm_id]
    if meeting.crm_meeting_id is None:
        raise CrmRejected("The meeting has no CRM id; sync it again.", 409)
    await engine.crm.set_meeting_contacts(meeting.crm_meeting_id, [c for c in crm_ids if c], tries)
    return {}


_STAGES: tuple[Stage, ...] = (_ensure_contacts, _push_meeting, _link_contacts)


def stage_handler(number: int) -> Callable[[SyncEngine, Job], Awaitable[None]]:
    """The job handler for stage `number` (1-3)."""

    async def run(engine: SyncEngine, job: Job) -> None:
        await _run_stage(engine, job, number)

    run.__name__ = f"run_{STAGES[number - 1]}_stage"
    return run


async def _run_stage(engine: SyncEngine, job: Job, number: int) -> None:
    store = engine.meetings
    meeting = await store.get(job.entity_id)
    if meeting is None or meeting.in_progress_sync_status != number:
        await meeting_runs.abandon(store, job)
        return
    tries: list[Attempt] = []
    context = {"meeting_id": meeting.id, "stage": STAGES[number - 1], "in_progress_sync_status": number}
    try:
        extra = await _STAGES[number - 1](engine, meeting, tries)
    except CrmError as exc:
        await _stage_failed(engine, job, meeting, exc, context)
        return
    except Exception:
        logger.exception("meeting_stage_crashed", extra=context)
        await _stage_failed(engine, job, meeting, CrmUnavailable(INTERNAL), context)
        return
    try:
        next_job = await meeting_runs.advance(store, job, number, extra)
    except LeaseLost:
        logger.warning("outcome_dropped", extra={**context, "job_id": job.id, "reason": "the lease ran out"})
        return
    engine.metrics.meeting_stages.labels(context["stage"], "finished").inc()
    logger.info("meeting_stage_finished", extra={**context, "requests": len(tries)})
    if next_job is not None:
        engine.wake()
    await announce(engine, meeting.id)


async def announce(engine: SyncEngine, meeting_id: str) -> None:
    """Tell the owner's live dashboards where the meeting's sync stands now."""
    if engine.events and (meeting := await engine.meetings.get(meeting_id)) is not None:
        engine.events.publish(meeting_event(meeting), account_id=meeting.account_id)


async def _stage_failed(engine: SyncEngine, job: Job, meeting: Meeting, exc: CrmError, context: dict[str, Any]) -> None:
    retry = engine.next_retry(job) if exc.transient else None
    try:
        if not await meeting_runs.fail(engine.meetings, job, exc.message, retry):
            return
    except LeaseLost:
        logger.warning("outcome_dropped", extra={**context, "job_id": job.id, "reason": "the lease ran out"})
        return
    await announce(engine, meeting.id)
    engine.metrics.meeting_stages.labels(context["stage"], "retrying" if retry else "failed").inc()
    if retry is not None:
        logger.warning("meeting_stage_retrying", extra={**context, "error": exc.message, "next_retry_at": retry})
    else:
        logger.error("meeting_stage_failed", extra={**context, "error": exc.message, "next_retry_at": None})
        engine.alerter.sync_failed("meeting", meeting.id, None, exc.message)


async def give_up_stage(engine: SyncEngine, job: Job, message: str) -> None:
    """A stage that kept crashing: the run ends failed with the message, and a person is alerted."""
    if await meeting_runs.fail(engine.meetings, job, message, None):
        await announce(engine, job.entity_id)
        engine.alerter.sync_failed("meeting", job.entity_id, None, message)
