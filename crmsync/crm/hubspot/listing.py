"""Paging through HubSpot's contact search by key, not by offset.

Search pages by an offset (`after`) over its sort. Sorted on lastmodifieddate, that offset skips a record
whenever one already read changes during the listing: the changed one moves to the end and every later one
shifts back a place. So each page asks instead for lastmodifieddate at or after the last stamp seen and
leaves out the records already read at exactly that stamp (the cursor names them). A page whose records
all share one stamp cannot move on that way: the records at that stamp are then paged by hs_object_id, and
the listing goes on after the stamp. No query ever pages deep, so the 10,000-result cap is never met.

Cursors: "k|<stamp>|<id,id,...>" (at or after the stamp, those ids at the stamp already read),
"t|<stamp>|<last id>" (the records at the stamp, by id), "g|<stamp>|" (strictly after the stamp).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ...timeutil import parse_iso
from ..types import CrmContact
from .records import CONTACT_PROPERTIES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@attrs.frozen
class Position:
    """Where a listing stands."""

    mode: str  # "k" at or after the stamp, "t" at the stamp by id, "g" after the stamp
    stamp: str  # ours (ISO); "" is the beginning
    seen: tuple[str, ...] = ()  # mode k: ids at the stamp already read
    last_id: int = 0  # mode t: the highest id at the stamp read so far

    @classmethod
    def parse(cls, cursor: str | None, changed_since: str | None) -> Position:
        """The position a cursor of ours names, or the first page's."""
        if cursor:
            mode, _, rest = cursor.partition("|")
            stamp, _, tail = rest.partition("|")
            if mode == "k":
                return cls("k", stamp, tuple(i for i in tail.split(",") if i))
            if mode == "t" and tail.isdigit():
                return cls("t", stamp, last_id=int(tail))
            if mode == "g":
                return cls("g", stamp)
        return cls("k", changed_since or "")

    def __str__(self) -> str:
        tail = ",".join(self.seen) if self.mode == "k" else str(self.last_id) if self.mode == "t" else ""
        return f"{self.mode}|{self.stamp}|{tail}"


def query(position: Position, size: int) -> dict[str, Any]:
    """The search body for the page at this position."""
    body: dict[str, Any] = {"properties": list(CONTACT_PROPERTIES), "limit": size}
    if position.mode == "t":
        body["sorts"] = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        filters = [_filter("lastmodifieddate", "EQ", epoch_ms(position.stamp)),
                   _filter("hs_object_id", "GT", str(position.last_id))]  # fmt: skip
    else:
        body["sorts"] = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
        operator = "GT" if position.mode == "g" else "GTE"
        filters = [_filter("lastmodifieddate", operator, epoch_ms(position.stamp))] if position.stamp else []
    if filters:
        body["filterGroups"] = [{"filters": filters}]
    return body


def fresh(position: Position, contacts: list[CrmContact]) -> list[CrmContact]:
    """The page's contacts less those the cursor says were read already."""
    if position.mode != "k" or not position.seen:
        return contacts
    seen = set(position.seen)
    return [c for c in contacts if not (c.changed_at == position.stamp and c.crm_id in seen)]


def following(position: Position, contacts: list[CrmContact], more: bool) -> Position | None:
    """Where the next page starts (None: this was the last)."""
    if position.mode == "t":
        if more and contacts:
            ids = [int(c.crm_id) for c in contacts if c.crm_id.isdigit()]
            return Position("t", position.stamp, last_id=max(ids, default=position.last_id))
        return Position("g", position.stamp)
    if not more or not contacts:
        return None
    last = contacts[-1].changed_at
    if last == position.stamp:  # a whole page at one stamp: page the records at it by id
        return Position("t", last)
    at_last = tuple(c.crm_id for c in contacts if c.changed_at == last)
    return Position("k", last, at_last)


def epoch_ms(stamp: str) -> str:
    """A stamp of ours as HubSpot's epoch milliseconds (exact: HubSpot's stamps have whole milliseconds)."""
    return str((parse_iso(stamp) - _EPOCH) // _MS)


def _filter(name: str, operator: str, value: str) -> dict[str, str]:
    return {"propertyName": name, "operator": operator, "value": value}
