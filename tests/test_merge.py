"""The three-way merge, case by case: the CRM wins only where both sides changed a field."""

from __future__ import annotations

import pytest

from crmsync.merge import merge

BASE = {"name": "Ann", "email": "ann@example.com", "phone": "111-111-1111"}


@pytest.mark.parametrize(
    ("local", "crm", "expected_local", "changed", "conflicts", "needs_push"),
    [
        # nothing changed anywhere
        (BASE, BASE, BASE, {}, [], False),
        # only the CRM changed a field: taken
        (BASE, {**BASE, "phone": "222-222-2222"}, {**BASE, "phone": "222-222-2222"}, {"phone": "222-222-2222"}, [], False),
        # only we changed a field: kept, and still to push
        ({**BASE, "name": "Annie"}, BASE, {**BASE, "name": "Annie"}, {}, [], True),
        # both changed the same field differently: the CRM wins, recorded as a conflict
        ({**BASE, "phone": "333-333-3333"}, {**BASE, "phone": "444-444-4444"}, {**BASE, "phone": "444-444-4444"},
         {"phone": "444-444-4444"}, ["phone"], False),
        # both changed the same field to the same value: no conflict
        ({**BASE, "phone": "555-555-5555"}, {**BASE, "phone": "555-555-5555"}, {**BASE, "phone": "555-555-5555"},
         {}, [], False),
        # different fields on each side: both survive, ours still to push
        ({**BASE, "name": "Annie"}, {**BASE, "phone": "666-666-6666"}, {**BASE, "name": "Annie", "phone": "666-666-6666"},
         {"phone": "666-666-6666"}, [], True),
        # a partial CRM change (a webhook) touches only the fields it names
        ({**BASE, "email": "new@example.com"}, {"name": "Anne"}, {**BASE, "name": "Anne", "email": "new@example.com"},
         {"name": "Anne"}, [], True),
    ],
)  # fmt: skip
def test_merge_cases(
    local: dict, crm: dict, expected_local: dict, changed: dict, conflicts: list, needs_push: bool
) -> None:
    result = merge(BASE, local, crm)
    assert result.local == expected_local
    assert result.changed == changed
    assert [c.field for c in result.conflicts] == conflicts
    assert result.needs_push is needs_push


def test_a_conflict_keeps_both_values() -> None:
    [conflict] = merge(BASE, {**BASE, "phone": "333"}, {"phone": "444"}).conflicts
    assert (conflict.local, conflict.crm, conflict.base) == ("333", "444", BASE["phone"])


def test_without_a_snapshot_every_difference_goes_to_the_crm() -> None:
    result = merge(None, BASE, {**BASE, "name": "Other"})
    assert result.local["name"] == "Other"
    assert [c.field for c in result.conflicts] == ["name"]
