"""The three-way merge of a CRM change into a local record, against the last-synced snapshot."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

FIELDS = ("name", "email", "phone")


@attrs.frozen
class Conflict:
    """A field changed on both sides to different values; the CRM's value won."""

    field: str
    local: str
    crm: str
    base: str | None


@attrs.frozen
class Merge:
    """The outcome: new local values, the new snapshot, what changed locally, and the conflicts."""

    local: dict[str, str]
    snapshot: dict[str, str]
    changed: dict[str, str]
    conflicts: tuple[Conflict, ...]

    @property
    def needs_push(self) -> bool:
        """True when a local change is still not in the CRM."""
        return any(self.local[f] != self.snapshot.get(f) for f in FIELDS)


def merge(base: Mapping[str, str] | None, local: Mapping[str, str], crm: Mapping[str, str]) -> Merge:
    """Merge CRM values (all fields or some) into local ones, field by field, three ways.

    A field only the CRM changed is taken; one only we changed is kept (and still pushed); one both
    changed takes the CRM's value, the source of truth, and is reported as a conflict.
    """
    base = dict(base or {})
    new_local, changed, conflicts = dict(local), {}, []
    for field in FIELDS:
        if field not in crm:
            continue
        theirs, ours, common = crm[field], local[field], base.get(field)
        if theirs in (common, ours):
            continue  # the CRM did not change it, or both sides already agree
        if ours != common:
            conflicts.append(Conflict(field, ours, theirs, common))
        new_local[field] = theirs
        changed[field] = theirs
    snapshot = {**base, **{f: crm[f] for f in FIELDS if f in crm}}
    return Merge(new_local, snapshot, changed, tuple(conflicts))
