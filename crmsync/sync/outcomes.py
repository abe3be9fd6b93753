"""Recording what a push achieved: attempts, the user's new state, retries, alerts and log lines."""

from __future__ import annotations

import logging

import attrs

from ..crm.attempts import Attempt
from ..crm.errors import CrmError, CrmRejected
from ..crm.types import CrmContact
from ..events import user_event
from ..store import jobs
from ..store.errors import UniqueViolation
from ..store.jobs import Job, LeaseLost
from ..store.user_sync import Gone, PushSuccess, mark_push_failed, record_push_failure, record_push_successes
from ..store.users import User
from ..timeutil import now_iso
from .engine import SyncEngine

logger = logging.getLogger(__name__)


@attrs.frozen
class Pushed:
    """What the CRM holds after a successful push; record is None when there was nothing to send."""

    record: CrmContact | None
    linked: bool = False


@attrs.frozen
class Outcome:
    """One push's result on its way to the store."""

    job: Job
    user: User
    pushed: Pushed
    tries: list[Attempt]
    started: str  # when the push began, by our clock: CRM news after it may be newer than the answer


LINKED_ELSEWHERE = "The CRM record {crm_id} is already linked to another user."


async def succeeded(engine: SyncEngine, outcomes: list[Outcome]) -> None:
    """Record successful pushes, many in one transaction (one commit for a whole batch).

    An outcome the store refuses (the CRM answered with a record another user is linked to) fails
    alone, for good, without taking the rest of the batch with it.
    """
    now = now_iso()
    pushes = [PushSuccess(o.job, o.user, o.pushed.record, o.pushed.linked, o.tries, o.started) for o in outcomes]
    results, due = await engine.db.run(lambda conn: record_push_successes(conn, pushes, now))
    stored = [(outcome, row) for outcome, row in zip(outcomes, results, strict=True) if isinstance(row, User)]
    refused = [outcome for outcome, row in zip(outcomes, results, strict=True) if isinstance(row, UniqueViolation)]
    lost = [outcome for outcome, row in zip(outcomes, results, strict=True) if isinstance(row, LeaseLost | Gone)]
    if due:
        engine.wake()
    for outcome in lost:
        dropped(outcome.job, outcome.user.id)
    publish_users(engine, [row for _, row in stored])
    engine.metrics.syncs.labels("synced").inc(len(stored))
    for outcome, row in stored:
        log_tries(engine, outcome.user, row.crm_id, outcome.tries)
        logger.info("sync_succeeded", extra={"user_id": row.id, "crm_id": row.crm_id, "linked": outcome.pushed.linked,
                                             "attempts": len(outcome.tries)})  # fmt: skip
    for outcome in refused:
        crm_id = outcome.pushed.record.crm_id if outcome.pushed.record else None
        error = CrmRejected(LINKED_ELSEWHERE.format(crm_id=crm_id), 409)
        await failed(engine, outcome.job, outcome.user, error, outcome.tries)


async def failed(
    engine: SyncEngine, job: Job, user: User, exc: CrmError, tries: list[Attempt], waits_for: str | None = None
) -> None:
    """Record a failed push: rescheduled with backoff while transient and within budget, else final."""
    now = now_iso()
    run_after = engine.next_retry(job) if exc.transient else None
    burn = not exc.transient and not user.crm_id
    try:
        async with engine.db.transaction() as conn:
            row = await record_push_failure(conn, job, user, exc.message, run_after, burn, tries, now, waits_for)
            woken = await jobs.wake_waiting(conn, user.id, now)
    except (LeaseLost, Gone):
        dropped(job, user.id)
        return
    if woken:
        engine.wake()
    log_tries(engine, user, user.crm_id, tries)
    if row is None:
        return  # edited meanwhile: the new change runs now with a fresh budget
    publish_users(engine, [row])
    extra = {"user_id": user.id, "crm_id": user.crm_id, "error": exc.message, "http_status": exc.status}
    engine.metrics.syncs.labels("retrying" if run_after else "failed").inc()
    if run_after is not None:
        engine.metrics.retries.labels("job").inc()
        logger.warning("sync_retrying", extra={**extra, "next_retry_at": run_after, "job_attempt": job.attempts + 1,
                                               "waits_for": waits_for})  # fmt: skip
    elif row.deleting:  # a person deletes the contact: its delete job takes over, nobody needs alerting
        logger.info("sync_ended_for_delete", extra={**extra, "job_attempt": job.attempts + 1})
    else:
        logger.error("sync_failed", extra={**extra, "next_retry_at": None, "job_attempt": job.attempts + 1})
        engine.alerter.sync_failed("user", user.id, user.email, exc.message)


async def give_up(engine: SyncEngine, job: Job, message: str) -> None:
    """A push that kept crashing: the user shows the failure, and a person is alerted."""
    async with engine.db.transaction() as conn:
        row = await mark_push_failed(conn, job.entity_id, message)
    if row is not None:
        publish_users(engine, [row])
        engine.metrics.syncs.labels("failed").inc()
        engine.alerter.sync_failed("user", row.id, row.email, message)


def dropped(job: Job, user_id: str) -> None:
    """An outcome with nothing to record: the claim's lease ran out (another run owns the job), or the user
    was deleted meanwhile."""
    logger.warning("outcome_dropped", extra={"job_id": job.id, "user_id": user_id, "lease_token": job.lease_token,
                                             "reason": "lease lost or user deleted meanwhile"})  # fmt: skip


def log_tries(engine: SyncEngine, user: User, crm_id: str | None, tries: list[Attempt]) -> None:
    """One log line per CRM request made for the user, numbered like its history, and counted."""
    for number, attempt in enumerate(tries, start=user.sync_attempts + 1):
        engine.metrics.sync_attempts.labels(attempt.outcome).inc()
        level = logging.INFO if attempt.outcome == "ok" else logging.WARNING
        logger.log(level, "sync_attempt", extra={
            "user_id": user.id, "crm_id": crm_id, "attempt": number, "operation": attempt.operation,
            "outcome": attempt.outcome, "http_status": attempt.http_status, "duration_ms": attempt.duration_ms,
            "error": attempt.error,
        })  # fmt: skip


def publish_users(engine: SyncEngine, rows: list[User]) -> None:
    """Tell live dashboards where these users' syncs stand now."""
    if engine.events:
        for row in rows:
            engine.events.publish(user_event(row))
