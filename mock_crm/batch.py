"""POST /crm/users/batch: up to 100 creates in one request, each judged like POST /crm/users."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mock_crm import keys
from mock_crm.bodies import read_json
from mock_crm.errors import ApiError, InvalidData
from mock_crm.intervals import note_keys
from mock_crm.users import Result, create_user
from mock_crm.validation import check_key, require_object

MAX_ITEMS = 100


def _items(body: Any) -> list[Any]:
    """Return the items list of a batch body, or raise InvalidData."""
    data = require_object(body)
    extra = [key[:64] for key in data if key != "items"][:20]
    if extra:
        raise InvalidData("Only 'items' is allowed.", dict.fromkeys(extra, "unknown field"))
    items = data.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidData(
            f"items must be a list of 1 to {MAX_ITEMS} users.", {"items": f"must hold 1 to {MAX_ITEMS} objects"}
        )
    return items


def _one(app: web.Application, client: str, item: Any) -> Result:
    """Create one batch item, turning its error into a per-item result."""
    try:
        key = None
        if isinstance(item, dict) and "idempotency_key" in item:
            item = dict(item)
            try:
                key = check_key(item.pop("idempotency_key"))
            except ValueError as exc:
                raise InvalidData("Some fields are invalid.", {"idempotency_key": str(exc)}) from None
        return create_user(app, client, key, item)
    except ApiError as exc:
        return Result(exc.status, exc.body())


async def post_batch(request: web.Request) -> web.Response:
    """Create each item in order; answer 200 with one {status, body} per item."""
    items = _items(await read_json(request))
    note_keys(request, [item["idempotency_key"] for item in items
                        if isinstance(item, dict) and isinstance(item.get("idempotency_key"), str)])  # fmt: skip
    client = request[keys.client]
    results = [_one(request.app, client, item) for item in items]
    return web.json_response({"results": [{"status": r.status, "body": r.body} for r in results]})
