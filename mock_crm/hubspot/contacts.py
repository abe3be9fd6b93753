"""Contacts v3: create, read, update, archive, and batch upsert by e-mail (200, or 207 with per-input errors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import HubSpotError, error_body, not_found, validation
from mock_crm.hubspot.properties import asked_properties, check_properties, render
from mock_crm.hubspot.service import API, archive_object, create_contact, read_body, update_object
from mock_crm.hubspot.store import HubObject, hs_time

BATCH_MAX = 100


def _lookup(request: web.Request) -> HubObject:
    """The contact named in the path, by id or (with idProperty=email) by e-mail address."""
    store, given = request.app[keys.store], request.match_info["contact_id"]
    id_property = request.query.get("idProperty", "hs_object_id")
    if id_property == "email":
        found = store.contact_by_email(given)
        if found is None:
            raise not_found("contact", given)
        return found
    if id_property != "hs_object_id":
        raise validation(f"idProperty {id_property[:64]} is not a unique property of contacts.")
    return store.get("contacts", given)


async def post_contact(request: web.Request) -> web.Response:
    """POST /crm/v3/objects/contacts: 201 with the new contact, 409 CONFLICT when the e-mail is taken."""
    props = check_properties("contacts", await read_body(request))
    record = create_contact(request.app, props, API)
    return web.json_response(render(record, list(props) or None), status=201)


async def get_contact(request: web.Request) -> web.Response:
    """GET /crm/v3/objects/contacts/{contact_id}?properties=...: 404 OBJECT_NOT_FOUND when gone."""
    return web.json_response(render(_lookup(request), asked_properties(request.query)))


async def patch_contact(request: web.Request) -> web.Response:
    """PATCH /crm/v3/objects/contacts/{contact_id}: change the given properties (no conditional writes)."""
    record = _lookup(request)
    props = check_properties("contacts", await read_body(request))
    record = update_object(request.app, "contacts", record.id, props, API)
    return web.json_response(render(record, list(props) or None))


async def delete_contact(request: web.Request) -> web.Response:
    """DELETE /crm/v3/objects/contacts/{contact_id}: archive; 204 whether or not it existed."""
    archive_object(request.app, "contacts", request.match_info["contact_id"], API)
    return web.Response(status=204)


async def batch_upsert(request: web.Request) -> web.Response:
    """POST /crm/v3/objects/contacts/batch/upsert: create or update each input by e-mail (or object id)."""
    requested = hs_time(datetime.now(UTC))
    inputs = _inputs(await read_body(request))
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        try:
            results.append(_upsert_one(request.app, item))
        except HubSpotError as exc:
            errors.append(error_body(exc.category, exc.message, context={"ids": [item["id"]]}, errors=[], links={}))
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": requested,
                            "startedAt": requested, "completedAt": hs_time(datetime.now(UTC))}  # fmt: skip
    if errors:
        body.update(numErrors=len(errors), errors=errors)
    return web.json_response(body, status=207 if errors else 200)


async def batch_read(request: web.Request) -> web.Response:
    """POST /crm/v3/objects/contacts/batch/read: up to 100 contacts by id (or, with idProperty email, by e-mail
    address); 207 names the ids it has not."""
    requested = hs_time(datetime.now(UTC))
    body = await read_body(request)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= BATCH_MAX:
        raise validation(f"Invalid input JSON: `inputs` must be a list of 1 to {BATCH_MAX} objects.")
    if not all(isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] for item in inputs):
        raise validation("Invalid input JSON: each input needs a string `id`.")
    names = body.get("properties")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise validation("properties must be a list of property names.")
    id_property = body.get("idProperty", "hs_object_id")
    if id_property not in ("hs_object_id", "email"):
        raise validation(f"idProperty {str(id_property)[:64]} is not a unique property of contacts.")
    store = request.app[keys.store]
    found, missing = [], []
    for item in inputs:
        by_email = id_property == "email"
        record = store.contact_by_email(item["id"]) if by_email else store.contacts.get(item["id"])
        if record is None:
            missing.append(item["id"])
        else:
            found.append(render(record, names or None))
    answer: dict[str, Any] = {"status": "COMPLETE", "results": found, "requestedAt": requested,
                              "startedAt": requested, "completedAt": hs_time(datetime.now(UTC))}  # fmt: skip
    if missing:
        message = "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
        answer.update(numErrors=1, errors=[error_body("OBJECT_NOT_FOUND", message, context={"ids": missing})])
    return web.json_response(answer, status=207 if missing else 200)


def _inputs(body: Any) -> list[dict[str, Any]]:
    """The checked `inputs` list: 1 to 100 objects with a string id and unique ids (else a 400)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= BATCH_MAX:
        raise validation(f"Invalid input JSON: `inputs` must be a list of 1 to {BATCH_MAX} objects.")
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise validation("Invalid input JSON: each input needs a string `id` and a `properties` object.")
    ids = [item["id"].lower() if item.get("idProperty") == "email" else item["id"] for item in inputs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise validation(f"Duplicate IDs found in batch input: {duplicates[:10]}. IDs must be unique")
    return inputs


def _upsert_one(app: web.Application, item: dict[str, Any]) -> dict[str, Any]:
    """Create or update one input; raise HubSpotError for this input only."""
    props = check_properties("contacts", item)
    store, id_property = app[keys.store], item.get("idProperty", "hs_object_id")
    if id_property == "email":
        email = check_properties("contacts", {"properties": {"email": item["id"]}})["email"] or ""
        if props.get("email") not in (None, email):
            raise validation("The email property must match the id when idProperty is email.")
        props["email"] = email
        existing = store.contact_by_email(email)
    elif id_property == "hs_object_id":
        existing = store.get("contacts", item["id"])
    else:
        raise validation(f"idProperty {str(id_property)[:64]} is not a unique property of contacts.")
    if existing is None:
        return render(create_contact(app, props, API), list(props), new=True)
    return render(update_object(app, "contacts", existing.id, props, API), list(props), new=False)
