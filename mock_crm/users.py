"""User handlers: create (idempotent), read, partial update, delete."""

from __future__ import annotations

import logging
from typing import Any

import attrs
from aiohttp import web

from mock_crm import keys
from mock_crm.bodies import read_json
from mock_crm.errors import PreconditionFailed
from mock_crm.idempotency import REPLAYED, fingerprint, header_key
from mock_crm.intervals import note_keys
from mock_crm.validation import USER_FIELDS, validate

logger = logging.getLogger(__name__)

REQUIRED = ("name", "email", "phone")


@attrs.frozen
class Result:
    """A handler outcome before rendering (also one item of a batch)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

    def render(self) -> web.Response:
        """Return the JSON response, marked when it is a replay."""
        headers = {REPLAYED: "true"} if self.replayed else None
        return web.json_response(self.body, status=self.status, headers=headers)


def create_user(app: web.Application, client: str, key: str | None, item: Any, source: str = "api") -> Result:
    """Create one user, replaying a stored result for a known key; no await, so check-and-create is atomic."""
    cache = app[keys.idempotency]
    scope = (client, "users", key) if key is not None else None
    print_ = fingerprint(item)
    if scope is not None:
        stored = cache.lookup(scope, print_)
        if stored is not None:
            return Result(stored.status, stored.body, replayed=True)
    fields = validate(item, USER_FIELDS, required=REQUIRED)
    store, faults = app[keys.store], app[keys.faults]
    if faults.merge_creates_next > 0 and store.users:
        faults.merge_creates_next -= 1
        user = next(reversed(store.users.values()))  # "merged" into the newest contact, as some CRMs do
        logger.info("user_create_merged", extra={"crm_id": user.crm_id, "client_id": client})
        return Result(201, user.to_json())
    user = store.create_user(fields)
    body = user.to_json()
    if scope is not None:
        cache.store(scope, print_, 201, body)
    if source == "crm":  # a person's create; creates through the API are answered, not announced
        announce_created(app, user, source)
    logger.info("user_created", extra={"crm_id": user.crm_id, "client_id": client, "source": source})
    return Result(201, body)


def announce_created(app: web.Application, user: Any, source: str) -> None:
    """A contact.created webhook carrying the new record's fields."""
    fields = {"name": user.name, "email": user.email, "phone": user.phone}
    app[keys.webhooks].emit("crm_id", user.crm_id, fields, user.updated_at, source, "contact.created")


def remove_user(app: web.Application, crm_id: str, source: str) -> None:
    """Delete a user (NotFound if absent) and send a contact.deleted webhook."""
    store = app[keys.store]
    store.delete_user(crm_id)
    app[keys.webhooks].emit("crm_id", crm_id, {}, store.clock.now(), source, "contact.deleted")
    logger.info("user_deleted", extra={"crm_id": crm_id, "source": source})


def edit_user(app: web.Application, crm_id: str, body: Any, source: str) -> dict[str, Any]:
    """Apply a partial update and emit a webhook if anything changed; return the record."""
    store = app[keys.store]
    user = store.get_user(crm_id)
    changed = store.update_user(crm_id, validate(body, USER_FIELDS, partial=True))
    if changed:
        app[keys.webhooks].emit("crm_id", crm_id, changed, user.updated_at, source)
        logger.info("user_updated", extra={"crm_id": crm_id, "fields": sorted(changed), "source": source})
    return user.to_json()


async def post_user(request: web.Request) -> web.Response:
    """POST /crm/users."""
    key = header_key(request)
    body = await read_json(request)
    if key is not None:
        note_keys(request, [key])
    return create_user(request.app, request[keys.client], key, body).render()


async def get_user(request: web.Request) -> web.Response:
    """GET /crm/users/{crm_id}; the ETag is the record's updated_at, for If-Match."""
    record = request.app[keys.store].get_user(request.match_info["crm_id"]).to_json()
    return web.json_response(record, headers={"ETag": f'"{record["updated_at"]}"'})


async def patch_user(request: web.Request) -> web.Response:
    """PATCH /crm/users/{crm_id} (a change made through the API); If-Match makes it conditional."""
    body = await read_json(request)
    crm_id = request.match_info["crm_id"]
    expected = request.headers.get("If-Match")
    if expected is not None:
        current = request.app[keys.store].get_user(crm_id).to_json()["updated_at"]
        if expected.strip().removeprefix("W/").strip('"') != current:
            raise PreconditionFailed("The record changed since that version.", updated_at=current)
    record = edit_user(request.app, crm_id, body, "api")
    return web.json_response(record, headers={"ETag": f'"{record["updated_at"]}"'})


async def delete_user(request: web.Request) -> web.Response:
    """DELETE /crm/users/{crm_id}."""
    remove_user(request.app, request.match_info["crm_id"], "api")
    return web.Response(status=204)
