"""Several users due at once: their creates go to the CRM as one batch request, the rest one by one."""

from __future__ import annotations

import asyncio
import json
import time

import attrs

from ..crm.attempts import Attempt
from ..crm.errors import CrmError
from ..store import users
from ..store.jobs import Job
from ..store.users import User
from ..timeutil import now_iso
from .engine import SyncEngine
from .outcomes import Outcome, Pushed, failed, succeeded
from .user_push import create_key, push_user

SINGLE_PUSHES_AT_ONCE = 8


async def push_users(engine: SyncEngine, group: list[Job]) -> None:
    """Push many users: batch the creates, and fall back to single pushes for everything else."""
    found = await users.get_many(engine.db, [job.entity_id for job in group])
    creates = [
        (job, found[job.entity_id]) for job in group if job.entity_id in found and not found[job.entity_id].crm_id
    ]
    singles = [job for job in group if job.entity_id not in found or found[job.entity_id].crm_id]
    if len(creates) > 1:
        started = time.perf_counter()
        singles += await _create_batch(engine, creates)
        for _ in creates:
            engine.metrics.sync_duration.observe(time.perf_counter() - started)
    else:
        singles += [job for job, _ in creates]
    # One worker's share of requests in flight, as if each of these were its own job.
    slots = asyncio.Semaphore(SINGLE_PUSHES_AT_ONCE)

    async def single(job: Job) -> None:
        async with slots:
            await engine.guarded(push_user, job, [job])

    await asyncio.gather(*(single(job) for job in singles))


async def _create_batch(engine: SyncEngine, creates: list[tuple[Job, User]]) -> list[Job]:
    """Send one batch create; record the items it created and return the jobs to retry one by one."""
    items = [
        (json.loads(user.create_body or await users.freeze_create_body(engine.db, user)), create_key(user))
        for _, user in creates
    ]
    tries: list[Attempt] = []
    started = now_iso()
    try:
        results = await engine.crm.create_contacts(items, tries)
    except CrmError as exc:
        if not exc.transient:
            return [job for job, _ in creates]  # the batch itself was refused: go one by one
        for job, user in creates:
            await failed(engine, job, user, exc, list(tries))
        return []
    done: list[Outcome] = []
    leftovers: list[Job] = []
    for (job, user), item in zip(creates, results, strict=True):
        if item.contact is not None:
            done.append(Outcome(job, user, Pushed(item.contact), _with_item_status(tries, item.status), started))
        else:
            # Rejected items (invalid, duplicate, key reused) go the single way, which knows each case.
            leftovers.append(job)
    if done:
        await succeeded(engine, done)
    return leftovers


def _with_item_status(tries: list[Attempt], status: int) -> list[Attempt]:
    """The batch request's tries as one user's history, the last one with that user's own status."""
    return [*tries[:-1], attrs.evolve(tries[-1], http_status=status)] if tries else []
