"""POST /users/batch: up to 1,000 contacts in one request, each created or refused on its own (207)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..bodies import body_limit
from ..errors import DuplicateEmail, ValidationFailed
from ..events import user_event
from ..keys import db_key, engine_key, events_key
from ..render import json_response
from ..store.creates import Created, create_many
from ..store.users import User
from ..validation import parse_json, validate_contact

logger = logging.getLogger(__name__)

MAX_ITEMS = 1000
MAX_BATCH_BODY = 2 * 1024 * 1024  # 1,000 contacts at their longest fields fit with room to spare


@body_limit(MAX_BATCH_BODY)
async def create_users(request: web.Request) -> web.Response:
    """Validate every item, store the valid ones with their sync jobs in one transaction, report each."""
    batch = Batch(_items(parse_json(await request.read())))
    created = batch.settle(await create_many(request.app[db_key], batch.fields()) if batch.valid else [])
    bus = request.app[events_key]
    for user in created:
        logger.info("user_created", extra={"user_id": user.id, "via": "batch"})
        if bus:
            bus.publish(user_event(user))
    if created:
        request.app[engine_key].wake()
    refused = len(batch.results) - len(created)
    logger.info("users_batch_done", extra={"items": len(batch.results), "new_users": len(created), "refused": refused})
    return json_response({"created": len(created), "refused": refused, "items": batch.results}, status=207)


def _items(body: object) -> list[Any]:
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_ITEMS:
        held = f"; it holds {len(body):,}" if isinstance(body, list) else ""
        raise ValidationFailed({"body": f"must be a JSON array of 1 to {MAX_ITEMS:,} users{held}"})
    return body


class Batch:
    """The items of one request: checked one by one, then given their outcomes, in the request's order."""

    def __init__(self, items: list[Any]) -> None:
        self.results: list[dict[str, Any]] = [{} for _ in items]
        self.valid: list[tuple[int, dict[str, str]]] = []
        self._first_with: dict[str, int] = {}  # email -> the first valid item that has it
        self._repeats: list[tuple[int, str]] = []  # later items with an email an earlier item has
        for index, item in enumerate(items):
            try:
                fields = _validate(item)
            except ValidationFailed as exc:
                self.results[index] = _refused(index, 422, "validation_failed", exc.message, **exc.extra)
                continue
            if self._first_with.setdefault(fields["email"], index) == index:
                self.valid.append((index, fields))
            else:
                self._repeats.append((index, fields["email"]))

    def fields(self) -> list[dict[str, str]]:
        """The valid items' contacts, with distinct emails, to store."""
        return [fields for _, fields in self.valid]

    def settle(self, outcomes: list[Created | DuplicateEmail]) -> list[User]:
        """Record what storing the valid items did; the users created."""
        owners: dict[str, str | None] = {}  # email -> the contact that has it now
        created: list[User] = []
        for (index, fields), outcome in zip(self.valid, outcomes, strict=True):
            if isinstance(outcome, DuplicateEmail):
                self.results[index] = _refused(index, 409, "duplicate_email", outcome.message, **outcome.extra)
                owners[fields["email"]] = outcome.extra.get("id")
            else:
                user = outcome[0]
                self.results[index], owners[user.email] = {"index": index, "status": 201, "id": user.id}, user.id
                created.append(user)
        for index, email in self._repeats:
            message = f"Item {self._first_with[email]} of this batch has this email."
            self.results[index] = _refused(index, 409, "duplicate_email", message, id=owners.get(email))
        return created


def _validate(item: object) -> dict[str, str]:
    if not isinstance(item, dict):
        raise ValidationFailed({"body": "must be a JSON object with name, email and phone"})
    return validate_contact(item, partial=False)


def _refused(index: int, status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "status": status, "error": code, "message": message, **extra}
