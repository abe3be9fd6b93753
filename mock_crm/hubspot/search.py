"""POST /crm/v3/objects/{contacts|meetings}/search: filters, one sort, pages of up to 200, 10,000 results at most."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from mock_crm.hubspot import keys
from mock_crm.hubspot.errors import validation
from mock_crm.hubspot.properties import DATETIMES, parse_datetime, render
from mock_crm.hubspot.service import read_body
from mock_crm.hubspot.store import HubObject

LIMIT_MAX = 200
RESULT_CAP = 10_000
_OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN", "NOT_IN"})
_ALLOWED = frozenset({"filterGroups", "sorts", "properties", "limit", "after", "query"})


def _kind(request: web.Request) -> str:
    """contacts or meetings, from the path."""
    return request.path.split("/")[4]


async def search(request: web.Request) -> web.Response:
    """Answer one page of matches in HubSpot's shape: total, results, paging.next.after."""
    body, kind = await read_body(request), _kind(request)
    groups, sort, names, limit, offset = _parse(body)
    records = [r for r in request.app[keys.store].objects[kind].values() if _matches(r, groups)]
    records.sort(key=lambda r: int(r.id))
    records.sort(key=lambda r: _key(r, sort[0]), reverse=sort[1])  # stable: ties stay in id order
    end = min(offset + limit, len(records), RESULT_CAP)
    page: dict[str, Any] = {"total": len(records), "results": [render(r, names) for r in records[offset:end]]}
    if end < min(len(records), RESULT_CAP):
        page["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
    return web.json_response(page)


def _parse(body: Any) -> tuple[list[list[dict[str, Any]]], tuple[str, bool], list[str] | None, int, int]:
    """Check the request and return (filter groups, (sort property, descending), properties, limit, offset)."""
    if not isinstance(body, dict) or set(body) - _ALLOWED:
        raise validation(f"Invalid input JSON: a search body takes only {sorted(_ALLOWED)}.")
    groups = body.get("filterGroups", [])
    if not isinstance(groups, list) or len(groups) > 5 or not all(_group_ok(g) for g in groups):
        raise validation("filterGroups must be a list of at most 5 groups of at most 6 valid filters each.")
    if sum(len(g["filters"]) for g in groups) > 18:
        raise validation("A search takes at most 18 filters in all.")
    limit = body.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= LIMIT_MAX:
        raise validation(f"limit must be a whole number from 0 to {LIMIT_MAX}.")
    after = body.get("after", "0") or "0"
    if not isinstance(after, str) or not after.isascii() or not after.isdigit():
        raise validation("after must be the paging token of an earlier page.")
    if int(after) >= RESULT_CAP:
        raise validation(f"Search results are capped at {RESULT_CAP}; narrow the filters to page further.")
    names = body.get("properties")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise validation("properties must be a list of property names.")
    return [g["filters"] for g in groups], _sort(body.get("sorts", [])), names or None, limit, int(after)


def _group_ok(group: Any) -> bool:
    """A group is {"filters": [...]} with 1 to 6 well-formed filters."""
    filters = group.get("filters") if isinstance(group, dict) else None
    return isinstance(filters, list) and 1 <= len(filters) <= 6 and all(map(_filter_ok, filters))


def _filter_ok(item: Any) -> bool:
    """A filter names a property and a known operator, with a string value where one is needed."""
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        return False
    operator = item.get("operator")
    if operator not in _OPERATORS:
        return False
    if operator in ("IN", "NOT_IN"):
        values = item.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return False
        return item["propertyName"] not in DATETIMES or all(map(_datetime_ok, values))
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return True
    value = item.get("value")
    if not isinstance(value, str):
        return False
    return item["propertyName"] not in DATETIMES or _datetime_ok(value)


def _datetime_ok(value: str) -> bool:
    """True for epoch milliseconds or ISO 8601."""
    try:
        parse_datetime(value)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def _sort(sorts: Any) -> tuple[str, bool]:
    """One sort, as a property name ("-name" descending) or {propertyName, direction}; default by id."""
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise validation("sorts must be a list with at most one sort.")
    if not sorts:
        return "hs_object_id", False
    item = sorts[0]
    if isinstance(item, str) and item.strip("-"):
        return item.lstrip("-"), item.startswith("-")
    if isinstance(item, dict) and isinstance(item.get("propertyName"), str):
        direction = item.get("direction", "ASCENDING")
        if direction in ("ASCENDING", "DESCENDING"):
            return item["propertyName"], direction == "DESCENDING"
    raise validation("A sort is a property name or {propertyName, direction: ASCENDING|DESCENDING}.")


def _key(record: HubObject, name: str) -> tuple[int, Any]:
    """A sort key that puts objects without the property first and compares like with like."""
    value = record.properties.get(name)
    if value is None:
        return (0, "")
    if name in DATETIMES:
        return (1, parse_datetime(value).timestamp())
    if name == "hs_object_id":
        return (1, int(value))
    return (1, value.lower())


def _matches(record: HubObject, groups: list[list[dict[str, Any]]]) -> bool:
    """Any group whose filters all hold (no groups: everything)."""
    return not groups or any(all(_holds(record, f) for f in group) for group in groups)


def _holds(record: HubObject, item: dict[str, Any]) -> bool:
    """Whether one filter holds for the record."""
    name, operator = item["propertyName"], item["operator"]
    present = record.properties.get(name) is not None
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return present == (operator == "HAS_PROPERTY")
    if operator in ("IN", "NOT_IN"):
        values = {_value(name, v) for v in item["values"]}
        inside = present and _value(name, record.properties[name]) in values
        return inside == (operator == "IN")
    if not present:
        return operator == "NEQ"
    mine, theirs = _value(name, record.properties[name]), _value(name, item["value"])  # type: ignore[arg-type]
    try:
        return {"EQ": mine == theirs, "NEQ": mine != theirs, "LT": mine < theirs, "LTE": mine <= theirs,
                "GT": mine > theirs, "GTE": mine >= theirs}[operator]  # fmt: skip
    except TypeError:  # an id compared with text
        return operator == "NEQ"


def _value(name: str, text: str) -> Any:
    """A comparable value: datetimes as instants, ids as numbers, text without case."""
    if name in DATETIMES:
        moment: datetime = parse_datetime(text)
        return moment.timestamp()
    if name == "hs_object_id" and text.isdigit():
        return int(text)
    return text.lower()
