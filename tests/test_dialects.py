"""The product's sync against both CRM dialects: the mock CRM and the HubSpot fake (issue 14).

The same test body runs against each (the `dialect` parameter), on both database engines: create, local edit,
a person's edit arriving by webhook, reconcile of one contact and the sweep, deletes both ways, lost replies
without a duplicate, a race with a person's edit, and a meeting's three stages with its contacts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from .conftest import JOHN, NewDatabase, eventually, get_user, wait_status
from .dialects import DIALECTS, Driver, Start, create_synced, factory


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_driver(
    dialect: str,
    new_database: NewDatabase,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    unused_tcp_port_factory: Callable[[], int],
) -> Start:
    return factory(dialect, new_database, aiohttp_server, aiohttp_client, unused_tcp_port_factory)


@pytest.fixture
async def crm(make_driver: Start) -> Driver:
    return await make_driver()


async def _local_is(crm: Driver, user_id: str, **fields: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        user = await get_user(crm.backend, crm.auth, user_id)
        return user if all(user[k] == v for k, v in fields.items()) and user["sync_status"] == "synced" else None

    return await eventually(check, 10)


async def _crm_is(crm: Driver, crm_id: str, **fields: str) -> None:
    async def check() -> bool:
        record = crm.records().get(crm_id)
        return record is not None and all(record.get(k) == v for k, v in fields.items())

    await eventually(check, 10)


async def test_a_create_and_a_local_edit_reach_the_crm(crm: Driver) -> None:
    user = await create_synced(crm, name="Gabriel García Márquez")
    assert crm.records() == {user["crm_id"]: {"name": "Gabriel García Márquez", "email": JOHN["email"],
                                              "phone": JOHN["phone"]}}  # fmt: skip
    resp = await crm.backend.patch(f"/users/{user['id']}", json={"name": "Ada", "phone": "555-0100-22"},
                                   headers=crm.auth)  # fmt: skip
    assert resp.status == 200
    await _crm_is(crm, user["crm_id"], name="Ada", phone="555-0100-22")
    await _local_is(crm, user["id"], name="Ada")
    assert len(crm.records()) == 1


async def test_a_name_with_runs_of_spaces_is_stored_as_both_sides_hold_it(crm: Driver) -> None:
    """HubSpot splits a name into words; runs of spaces are one space here too, so the two sides agree at once
    (before, the name went back and forth for good on HubSpot)."""
    user = await create_synced(crm, name="Ada\u00a0 Lovelace  King")
    assert user["name"] == "Ada Lovelace King" and user["sync_attempts"] <= 2  # on HubSpot a lookup, then the create
    assert crm.records()[user["crm_id"]]["name"] == "Ada Lovelace King"
    resp = await crm.backend.get(f"/users/{user['id']}", headers=crm.auth)
    assert (await resp.json())["sync_status"] == "synced"


async def test_a_persons_edit_in_the_crm_arrives_by_webhook(crm: Driver) -> None:
    user = await create_synced(crm)
    await crm.edit_as_person(user["crm_id"], name="Mary Ann Smith", phone="+44 20 7946 0000")
    await _local_is(crm, user["id"], name="Mary Ann Smith", phone="+44 20 7946 0000")
    resp = await crm.backend.get(f"/users/{user['id']}/history", headers=crm.auth)
    history = await resp.json()
    assert any(item.get("kind") == "webhook" or "webhook" in str(item) for item in history["items"]), history


async def test_reconcile_and_the_sweep_repair_a_missed_change(crm: Driver) -> None:
    first, second = await create_synced(crm), await create_synced(crm, email="second@example.com")
    crm.edit_silently(first["crm_id"], name="Changed Quietly")
    resp = await crm.backend.post(f"/users/{first['id']}/reconcile", headers=crm.auth)
    assert resp.status == 200, await resp.text()
    await _local_is(crm, first["id"], name="Changed Quietly")
    crm.edit_silently(second["crm_id"], phone="+1 415 555 0199")
    resp = await crm.backend.post("/reconcile", headers=crm.auth)
    assert resp.status in (200, 202), await resp.text()
    await _local_is(crm, second["id"], phone="+1 415 555 0199")


async def test_deletes_go_both_ways(crm: Driver) -> None:
    ours, theirs = await create_synced(crm), await create_synced(crm, email="theirs@example.com")
    resp = await crm.backend.delete(f"/users/{ours['id']}", headers=crm.auth)
    assert resp.status == 202

    async def gone() -> bool:
        return (await crm.backend.get(f"/users/{ours['id']}", headers=crm.auth)).status == 404

    await eventually(gone, 10)
    assert ours["crm_id"] not in crm.records()
    await crm.delete_as_person(theirs["crm_id"])
    after = await wait_status(crm.backend, crm.auth, theirs["id"], "failed")
    assert after["crm_id"] is None and "deleted in the CRM" in after["last_error"]


async def test_a_contact_created_by_a_person_appears_here(crm: Driver) -> None:
    crm_id = await crm.create_as_person(name="Grace Hopper", email="grace@example.com", phone="+1 202 555 0143")

    async def imported() -> dict[str, Any] | None:
        resp = await crm.backend.get("/users", params={"q": "grace@example.com"}, headers=crm.auth)
        items = (await resp.json())["items"]
        return items[0] if items and items[0]["sync_status"] == "synced" else None

    user = await eventually(imported, 10)
    assert user["crm_id"] == crm_id and user["name"] == "Grace Hopper"


async def test_a_local_create_whose_email_the_crm_has_links_it_and_the_crm_wins(make_driver: Start) -> None:
    """Never a second contact, and never the CRM's contact overwritten: it is linked and its values win."""
    crm = await make_driver(import_crm_creates=False)  # the person's contact waits in the CRM alone
    crm_id = await crm.create_as_person(name="Has It", email="shared@example.com", phone="+1 202 555 0143")
    user = await create_synced(crm, name="Local Name", email="shared@example.com")
    assert user["crm_id"] == crm_id and user["name"] == "Has It" and user["phone"] == "+1 202 555 0143"
    assert crm.records() == {crm_id: {"name": "Has It", "email": "shared@example.com", "phone": "+1 202 555 0143"}}


async def test_edits_made_while_a_creates_reply_was_lost_reach_the_crm(crm: Driver) -> None:
    """The create was carried out and its reply lost; the person edits meanwhile (200). The retried create must
    find its own contact as its answer and push the edits, not take the CRM's older values over them."""
    await crm.set_faults(lost_reply_rate=1.0)
    resp = await crm.backend.post("/users", json={**JOHN, "email": "lost.edit@example.com"}, headers=crm.auth)
    user_id = (await resp.json())["id"]

    async def created() -> bool:
        return len(crm.records()) == 1

    await eventually(created, 10)
    edit = {"name": "Edited Name", "phone": "555-999-9999", "email": "edited@example.com"}
    resp = await crm.backend.patch(f"/users/{user_id}", json=edit, headers=crm.auth)
    assert resp.status == 200

    async def answered() -> bool:
        return (await get_user(crm.backend, crm.auth, user_id))["crm_id"] is not None

    if crm.dialect == "hubspot":  # its retried create is answered by a lookup, a read whose reply is not lost
        await eventually(answered, 10)
    await crm.set_faults(lost_reply_rate=0.0)
    user = await _local_is(crm, user_id, **edit)
    await _crm_is(crm, user["crm_id"], **edit)
    assert len(crm.records()) == 1


async def test_a_value_the_crm_lacks_is_pushed_back_so_both_sides_agree(crm: Driver) -> None:
    """HubSpot allows a contact without a phone; crmsync does not. A record read whole that lacks one (or holds
    one we refuse) gets ours back, instead of the two differing while both say synced."""
    user = await create_synced(crm)
    crm.edit_silently(user["crm_id"], phone="")
    resp = await crm.backend.post(f"/users/{user['id']}/reconcile", headers=crm.auth)
    assert resp.status == 200, await resp.text()
    await _crm_is(crm, user["crm_id"], phone=JOHN["phone"])
    after = await _local_is(crm, user["id"], phone=JOHN["phone"])
    resp = await crm.backend.post(f"/users/{user['id']}/reconcile", headers=crm.auth)  # agreed now: nothing more
    assert resp.status == 200
    assert (await get_user(crm.backend, crm.auth, user["id"]))["sync_attempts"] == after["sync_attempts"]


async def test_a_full_reconcile_finds_what_the_crm_lost(crm: Driver) -> None:
    kept, lost = await create_synced(crm), await create_synced(crm, email="lost@example.com")
    crm.lose_silently(lost["crm_id"])
    resp = await crm.backend.post("/reconcile", params={"full": "true"}, headers=crm.auth)
    assert resp.status == 202, await resp.text()
    after = await wait_status(crm.backend, crm.auth, lost["id"], "failed")
    assert after["crm_id"] is None and "deleted in the CRM" in after["last_error"]
    assert (await get_user(crm.backend, crm.auth, kept["id"]))["sync_status"] == "synced"


async def test_the_crms_rate_limit_is_kept(make_driver: Start) -> None:
    crm = await make_driver(batch_size=1)  # a request per create
    await crm.set_rate_limit(5)
    ids = []
    for n in range(12):
        resp = await crm.backend.post("/users", json={**JOHN, "email": f"paced{n}@example.com"}, headers=crm.auth)
        ids.append((await resp.json())["id"])
    for user_id in ids:
        user = await wait_status(crm.backend, crm.auth, user_id, "synced", timeout=20)
        assert user["last_error"] is None
    assert len(crm.records()) == 12
    assert (await crm.stats())["rate_limited"] <= 1  # paced by the CRM's headers: at most the first burst


async def test_lost_replies_make_no_duplicate(crm: Driver) -> None:
    await crm.set_faults(lost_reply_rate=1.0)
    ids = []
    for n in range(6):
        resp = await crm.backend.post("/users", json={**JOHN, "email": f"lost{n}@example.com"}, headers=crm.auth)
        assert resp.status == 201
        ids.append((await resp.json())["id"])

    async def tried() -> bool:
        return len(crm.records()) == len(ids)  # every create was applied; every reply was lost

    await eventually(tried, 10)
    await crm.set_faults(lost_reply_rate=0.0)
    for user_id in ids:
        await wait_status(crm.backend, crm.auth, user_id, "synced", timeout=20)
    emails = sorted(record["email"] for record in crm.records().values())
    assert emails == sorted(f"lost{n}@example.com" for n in range(6))


async def test_a_persons_edit_racing_a_local_edit_of_the_same_field_wins(make_driver: Start) -> None:
    """Our push is conditional (If-Match on the mock; on HubSpot a read of lastmodifieddate first): a name a
    person changed in the CRM since our last sync is not overwritten by a local edit of the name; the CRM wins
    the conflict, both sides end equal, and the conflict is listed."""
    crm = await make_driver()
    user = await create_synced(crm)
    crm.edit_silently(user["crm_id"], name="Changed In The CRM")  # its webhook is late: not yet here
    resp = await crm.backend.patch(
        f"/users/{user['id']}", json={"name": "Changed Here", "phone": "+1 415 555 0100"}, headers=crm.auth
    )
    assert resp.status == 200
    await _local_is(crm, user["id"], name="Changed In The CRM", phone="+1 415 555 0100")
    await _crm_is(crm, user["crm_id"], name="Changed In The CRM", phone="+1 415 555 0100")
    resp = await crm.backend.get("/conflicts", headers=crm.auth)
    conflicts = (await resp.json())["items"]
    assert [(c["field"], c["local_value"], c["crm_value"]) for c in conflicts] == [
        ("name", "Changed Here", "Changed In The CRM")
    ]


async def test_a_meeting_syncs_in_three_stages_with_its_contacts(crm: Driver) -> None:
    ann, bob = await create_synced(crm, email="ann@example.com"), await create_synced(crm, email="bob@example.com")
    body = {"title": "Quarterly review", "starts_at": "2026-12-01T15:00:00Z", "ends_at": "2026-12-01T16:00:00Z",
            "attendee_ids": [ann["id"], bob["id"]]}  # fmt: skip
    resp = await crm.backend.post("/meetings", json=body, headers=crm.auth)
    assert resp.status == 201, await resp.text()
    meeting = await resp.json()
    resp = await crm.backend.post(f"/meetings/{meeting['id']}/sync", headers=crm.auth)
    assert resp.status == 202
    seen: list[int | None] = []

    async def finished() -> bool:
        resp = await crm.backend.get(f"/meetings/{meeting['id']}/sync_status", headers=crm.auth)
        state = (await resp.json())["in_progress_sync_status"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state is None

    await eventually(finished, 15)
    assert seen[-1] is None and seen[:-1] == sorted(seen[:-1])  # never backwards
    [(meeting_id, contacts)] = crm.meeting_contacts().items()
    assert contacts == {ann["crm_id"], bob["crm_id"]}
    assert crm.meeting_titles() == {meeting_id: "Quarterly review"}
    resp = await crm.backend.post(f"/meetings/{meeting['id']}/sync", headers=crm.auth)  # again: no second meeting
    assert resp.status == 202
    await eventually(finished, 15)
    assert len(crm.meeting_contacts()) == 1


async def test_a_meeting_create_whose_reply_was_lost_is_not_made_twice(crm: Driver) -> None:
    """The mock keys creates; HubSpot has no keys, so the create's marker is searched for before a new POST."""
    ann = await create_synced(crm, email="ann@example.com")
    body = {"title": "Lost reply", "starts_at": "2026-12-01T15:00:00Z", "ends_at": "2026-12-01T16:00:00Z",
            "attendee_ids": [ann["id"]]}  # fmt: skip
    resp = await crm.backend.post("/meetings", json=body, headers=crm.auth)
    meeting = await resp.json()
    await crm.set_faults(lost_reply_rate=1.0)  # every write is carried out, every reply lost
    resp = await crm.backend.post(f"/meetings/{meeting['id']}/sync", headers=crm.auth)
    assert resp.status == 202

    async def made() -> bool:
        return len(crm.meeting_titles()) == 1 and (await crm.stats())["lost_replies"] >= 3

    await eventually(made, 15)  # created, its reply lost, and tried again (and lost again) since
    await crm.set_faults(lost_reply_rate=0.0)

    async def finished() -> bool:
        resp = await crm.backend.get(f"/meetings/{meeting['id']}/sync_status", headers=crm.auth)
        return (await resp.json())["in_progress_sync_status"] is None

    await eventually(finished, 15)
    [(meeting_id, contacts)] = crm.meeting_contacts().items()
    assert contacts == {ann["crm_id"]} and crm.meeting_titles() == {meeting_id: "Lost reply"}
