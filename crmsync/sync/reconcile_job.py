"""The user_reconcile job: read one user's record from the CRM and merge it, retried while the CRM is down."""

from __future__ import annotations

import logging

from ..crm.errors import CrmError
from ..errors import ServiceError
from ..store import jobs
from ..store.jobs import Job
from ..timeutil import now_iso
from .engine import SyncEngine
from .reconcile import reconcile_user

logger = logging.getLogger(__name__)


async def reconcile_job(engine: SyncEngine, job: Job) -> None:
    """Reconcile the job's user; transient CRM failures retry with backoff, anything else ends the job."""
    try:
        await reconcile_user(engine, job.entity_id)
    except CrmError as exc:
        retry = engine.next_retry(job) if exc.transient else None
        async with engine.db.transaction() as conn:
            await jobs.check_lease(conn, job)
            await jobs.fail(conn, job, exc.message, retry, now_iso())
        log = logger.warning if retry else logger.error
        log("reconcile_failed", extra={"user_id": job.entity_id, "error": exc.message, "next_retry_at": retry})
        return
    except ServiceError as exc:  # the user is gone, or not in the CRM yet: nothing to reconcile
        logger.info("reconcile_skipped", extra={"user_id": job.entity_id, "reason": exc.message})
    async with engine.db.transaction() as conn:
        await jobs.check_lease(conn, job)
        await jobs.finish(conn, job, now_iso())
