"""What only HubSpot has, end to end against its fake: OAuth refresh tokens, /webhook/hubspot (v3 signatures,
batches, dedupe by eventId), "Existing ID" conflicts, search windows before the 10,000-result cap, its rate
limits (rolling, 423, DAILY) and the settings that pick it (issue 14)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.config import Config, ConfigError
from crmsync.crm.hubspot.signature import sign_v3
from crmsync.keys import crm_key, engine_key
from crmsync.timeutil import isoformat
from mock_crm.hubspot import keys as hubspot_keys
from mock_crm.hubspot.store import hs_time

from .app_process import crmsync_env
from .conftest import JOHN, NewDatabase, eventually, get_user, wait_status
from .dialects import Driver, Start, create_synced, factory
from .mock_crm.hubspot_helpers import APP_SECRET, CLIENT_SECRET, REFRESH_TOKEN


@pytest.fixture
def make_hubspot(
    new_database: NewDatabase,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    unused_tcp_port_factory: Callable[[], int],
) -> Start:
    return factory("hubspot", new_database, aiohttp_server, aiohttp_client, unused_tcp_port_factory)


@pytest.fixture
async def hub(make_hubspot: Start) -> Driver:
    return await make_hubspot()


def _signed(hub: Driver, events: Any, secret: str = APP_SECRET, age_ms: int = 0) -> tuple[bytes, dict[str, str]]:
    """The delivery as HubSpot signs it: v3 over method, the URL it posts to, the body and the timestamp."""
    body = json.dumps(events).encode()
    stamp = str(int(time.time() * 1000) - age_ms)
    uri = str(hub.backend.make_url("/webhook/hubspot"))
    headers = {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
               "X-HubSpot-Signature-v3": sign_v3(secret, "POST", uri, body, stamp)}  # fmt: skip
    return body, headers


def _event(event_id: int, object_id: str, kind: str = "contact.propertyChange", **extra: Any) -> dict[str, Any]:
    return {"eventId": event_id, "subscriptionId": 1, "portalId": 62515, "appId": 1160452,
            "occurredAt": int(time.time() * 1000), "subscriptionType": kind, "attemptNumber": 0,
            "objectId": int(object_id), "changeSource": "CRM_UI", "sourceId": "userId:1",
            "propertyName": "firstname", "propertyValue": "x", **extra}  # fmt: skip


async def test_a_delivery_is_verified_on_the_raw_body_and_applied_once_per_event(hub: Driver) -> None:
    user = await create_synced(hub)
    hub.edit_silently(user["crm_id"], name="Quiet Change")  # the change the events are news of
    events = [_event(900001, user["crm_id"]), _event(900002, user["crm_id"], propertyName="lastname")]
    body, headers = _signed(hub, events)
    resp = await hub.backend.post("/webhook/hubspot", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    results = (await resp.json())["results"]
    assert [r["event_id"].rsplit("-", 2)[0] for r in results] == ["hubspot-900001", "hubspot-900002"]
    assert (await get_user(hub.backend, hub.auth, user["id"]))["name"] == "Quiet Change"
    again = await hub.backend.post("/webhook/hubspot", data=body, headers=_signed(hub, events)[1])
    assert again.status == 200
    assert {r["result"] for r in (await again.json())["results"]} == {"duplicate"}


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body, headers: (body + b" ", headers),  # the body changed after signing
        lambda body, headers: (body, {**headers, "X-HubSpot-Signature-v3": "AAAA"}),
        lambda body, headers: (body, {k: v for k, v in headers.items() if k != "X-HubSpot-Request-Timestamp"}),
    ],
)
async def test_a_delivery_that_is_not_provably_hubspots_is_refused_before_parsing(hub: Driver, spoil: Any) -> None:
    user = await create_synced(hub)
    hub.edit_silently(user["crm_id"], name="Must Not Arrive")
    body, headers = spoil(*_signed(hub, [_event(900010, user["crm_id"])]))
    resp = await hub.backend.post("/webhook/hubspot", data=body, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"
    stale_body, stale = _signed(hub, [_event(900011, user["crm_id"])], age_ms=301_000)
    assert (await hub.backend.post("/webhook/hubspot", data=stale_body, headers=stale)).status == 401
    assert (await get_user(hub.backend, hub.auth, user["id"]))["name"] == JOHN["name"]


async def test_a_malformed_delivery_gets_422_per_field_and_other_events_are_ignored(hub: Driver) -> None:
    for events, field in [({"not": "a list"}, "body"), ([{"eventId": "x"}], "0.eventId"), ([], "body")]:
        body, headers = _signed(hub, events)
        resp = await hub.backend.post("/webhook/hubspot", data=body, headers=headers)
        assert resp.status == 422, await resp.text()
        assert field in (await resp.json())["fields"]
    body, headers = _signed(hub, [_event(900020, "1", propertyName="jobtitle"),
                                  _event(900021, "1", kind="deal.creation")])  # fmt: skip
    resp = await hub.backend.post("/webhook/hubspot", data=body, headers=headers)
    assert resp.status == 200 and (await resp.json()) == {"results": [], "ignored": 2}


async def test_an_event_about_a_contact_not_linked_here(make_hubspot: Start) -> None:
    """A person's change of a contact nobody here has is acknowledged (waiting would not link it); an API change
    of one (perhaps our own create, whose answer is on its way) asks for the batch again."""
    hub = await make_hubspot(import_crm_creates=False)  # a contact a person adds in HubSpot stays unknown here
    other = await hub.create_as_person(name="Not Here", email="elsewhere@example.com")
    body, headers = _signed(hub, [_event(900030, other)])
    resp = await hub.backend.post("/webhook/hubspot", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert [r["result"] for r in (await resp.json())["results"]] == ["unknown"]
    body, headers = _signed(hub, [_event(900031, other, changeSource="INTEGRATION", sourceId="1160452")])
    resp = await hub.backend.post("/webhook/hubspot", data=body, headers=headers)
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"] == "5"
    answer = await resp.json()
    assert answer["error"] == "retry_later" and answer["results"][0]["result"] == "retry"


async def test_changing_an_email_to_one_another_contact_has_names_it(hub: Driver) -> None:
    ours = await create_synced(hub)
    taken = await hub.create_as_person(name="Has It", email="taken@example.com")
    resp = await hub.backend.patch(f"/users/{ours['id']}", json={"email": "taken@example.com"}, headers=hub.auth)
    assert resp.status == 200

    async def refused() -> dict[str, Any] | None:
        user = await get_user(hub.backend, hub.auth, ours["id"])
        return user if user["sync_status"] == "failed" and user["last_error"] else None

    user = await eventually(refused, 10)
    assert taken in user["last_error"] and "email" in user["last_error"]
    assert hub.records()[taken]["name"] == "Has It" and hub.records()[ours["crm_id"]]["email"] == JOHN["email"]


async def test_oauth_refresh_tokens_are_used_and_renewed(make_hubspot: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hub = await make_hubspot(oauth=True)
    user = await create_synced(hub)
    stats = await hub._call("GET", "/_fake/stats")
    assert stats[1]["tokens_issued"] == 1
    expired = await hub._call("POST", "/_fake/tokens/expire")
    assert expired[0] == 200 and expired[1]["expired"] == 1
    resp = await hub.backend.patch(f"/users/{user['id']}", json={"name": "After Expiry"}, headers=hub.auth)
    assert resp.status == 200

    async def pushed() -> bool:
        return hub.records()[user["crm_id"]]["name"] == "After Expiry"

    await eventually(pushed, 10)
    assert (await hub._call("GET", "/_fake/stats"))[1]["tokens_issued"] == 2  # one refresh after the 401
    issued = hub.app[hubspot_keys.tokens]
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, APP_SECRET, *issued._issued):  # the access tokens too
        assert secret not in logged


async def _listing(hub: Driver, limit: int, between: Any = None) -> list[str]:
    """Every crm_id a listing from the start returns, page by page of `limit`; between(page) runs after each."""
    adapter = hub.backend.app[crm_key]
    cursor, ids, pages = None, [], 0
    while True:
        page = await adapter.list_contacts(None, cursor, limit=limit)
        ids += [c.crm_id for c in page.contacts]
        pages += 1
        if between is not None:
            between(pages)
        cursor = page.next_cursor
        if cursor is None:
            return ids
        assert pages < 100


def _stamp(hub: Driver, crm_id: str, moment: datetime) -> None:
    record = hub.app[hubspot_keys.store].contacts[crm_id]
    record.updated_at = moment
    record.properties["lastmodifieddate"] = hs_time(moment)


async def test_a_contact_changed_during_a_listing_does_not_push_another_out_of_it(hub: Driver) -> None:
    """Paged by offset, a record read on page 1 and changed meanwhile moves to the end and the next one is
    never returned; paged by key, every record is."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    ids = [await hub.create_as_person(name=f"Person {n}", email=f"p{n}@example.com") for n in range(6)]
    for n, crm_id in enumerate(ids):
        _stamp(hub, crm_id, start + timedelta(seconds=n))

    def edit_the_first(pages: int) -> None:
        if pages == 1:
            hub.edit_silently(ids[0], phone="+1 415 555 0100")  # now the newest

    listed = await _listing(hub, 2, edit_the_first)
    assert set(listed) == set(ids), listed
    assert listed[-1] == ids[0]  # read again at its new place


async def test_more_contacts_at_one_stamp_than_a_page_holds_are_all_listed(hub: Driver) -> None:
    moment = datetime.now(UTC) - timedelta(minutes=1)
    ids = [await hub.create_as_person(name=f"Same {n}", email=f"same{n}@example.com") for n in range(7)]
    for crm_id in ids[:5]:
        _stamp(hub, crm_id, moment)  # five share a millisecond, more than a page of two
    for n, crm_id in enumerate(ids[5:]):
        _stamp(hub, crm_id, moment + timedelta(seconds=n + 1))
    listed = await _listing(hub, 2)
    assert sorted(set(listed)) == sorted(ids) and listed[-2:] == ids[5:]
    since = await hub.backend.app[crm_key].list_contacts(isoformat(moment + timedelta(seconds=1)), None)
    assert [c.crm_id for c in since.contacts] == ids[5:]  # changed at or after the checkpoint


async def test_a_spent_daily_limit_holds_every_push_until_the_reset(
    hub: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    await hub.set_faults(daily_exhausted=True)
    resp = await hub.backend.post("/users", json=JOHN, headers=hub.auth)
    user_id = (await resp.json())["id"]
    for n in range(5):  # more work while the limit is spent: held, not sent, not alerted again
        await hub.backend.post("/users", json={**JOHN, "email": f"more{n}@example.com"}, headers=hub.auth)
    transport = hub.backend.app[crm_key].transport

    async def held() -> bool:
        return transport.held_for() > 0

    await eventually(held, 10)
    assert 0 < transport.held_for() <= 86400  # until the next midnight in the account's time zone (UTC)

    async def told() -> dict[str, Any] | None:
        user = await get_user(hub.backend, hub.auth, user_id)
        return user if user["last_error"] and "daily request limit" in user["last_error"] else None

    user = await eventually(told, 10)
    assert user["next_retry_at"] is not None  # waiting, not failed for good
    assert not hub.records()
    assert [r.getMessage() for r in caplog.records].count("crm_sync_paused") == 1  # one alert per hold
    assert (await hub.stats())["rate_limited"] <= 2  # the in-flight requests that met it; nothing after
    await hub.set_faults(daily_exhausted=False)
    transport.held_until = 0.0  # the reset comes early in a test, and the dispatcher is told at once
    hub.backend.app[engine_key].wake()
    await wait_status(hub.backend, hub.auth, user_id, "synced", timeout=15)


async def test_a_423_is_waited_out_without_failing_the_push(hub: Driver) -> None:
    """HubSpot answers 423 Locked while it is busy with a record: waited at least 2 s, then sent again.
    (The rolling rate limit is proved on both dialects in test_dialects.py.)"""
    await hub.set_faults(fail_next=1, fail_status=423)
    started = time.monotonic()
    user = await create_synced(hub)
    assert user["last_error"] is None and time.monotonic() - started >= 2.0
    resp = await hub.backend.get(f"/users/{user['id']}/history", headers=hub.auth)
    assert 423 in [item.get("http_status") for item in (await resp.json())["items"]]


def test_hubspot_needs_a_token_or_all_three_oauth_settings() -> None:
    with pytest.raises(ConfigError, match="CRMSYNC_HUBSPOT_TOKEN"):
        Config.from_env(crmsync_env(CRMSYNC_CRM="hubspot"))
    with pytest.raises(ConfigError, match="CRMSYNC_HUBSPOT_REFRESH_TOKEN"):
        Config.from_env(crmsync_env(CRMSYNC_CRM="hubspot", CRMSYNC_HUBSPOT_CLIENT_ID="a",
                                    CRMSYNC_HUBSPOT_CLIENT_SECRET="b"))  # fmt: skip
    config = Config.from_env(crmsync_env(CRMSYNC_CRM="hubspot", CRMSYNC_HUBSPOT_TOKEN="pat-na1-x",
                                         CRMSYNC_CRM_CLIENT_SECRET="", CRMSYNC_WEBHOOK_SECRET=""))  # fmt: skip
    assert config.hubspot is not None and config.hubspot.url == "https://api.hubapi.com"
    assert "pat-na1-x" not in repr(config)
    with pytest.raises(ConfigError, match="CRMSYNC_HUBSPOT_TIMEZONE"):
        Config.from_env(crmsync_env(CRMSYNC_CRM="hubspot", CRMSYNC_HUBSPOT_TOKEN="t",
                                    CRMSYNC_HUBSPOT_TIMEZONE="Mars/Base"))  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'[{"eventId": 1, "eventId": 2}]',  # a key twice
        b"[" * 5000 + b"]" * 5000,
        json.dumps([{**_event(1, "1"), "propertyName": ["firstname"]}]).encode(),
        json.dumps([{**_event(1, "1"), "changeSource": {"a": 1}}]).encode(),
        json.dumps([{**_event(1, "1"), "occurredAt": 10**30}]).encode(),
        json.dumps([{**_event(1, "1"), "eventId": 2**64}]).encode(),
        json.dumps([_event(1, "1")]).encode()[:-2] + b', "nested": ' + b"[" * 990 + b"]" * 990 + b"}]",
        json.dumps([_event(n, "1") for n in range(101)]).encode(),
    ],
)
async def test_hostile_deliveries_get_a_clear_4xx_never_a_500(hub: Driver, raw: bytes) -> None:
    stamp = str(int(time.time() * 1000))
    uri = str(hub.backend.make_url("/webhook/hubspot"))
    headers = {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
               "X-HubSpot-Signature-v3": sign_v3(APP_SECRET, "POST", uri, raw, stamp)}  # fmt: skip
    resp = await hub.backend.post("/webhook/hubspot", data=raw, headers=headers)
    body = await resp.json()
    assert resp.status < 500, (resp.status, body)
    assert resp.status == 200 or set(body) >= {"error", "message"}
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("stamp", ["9" * 400, "9" * 5000])
async def test_an_absurd_timestamp_is_refused_like_any_bad_signature(hub: Driver, stamp: str) -> None:
    headers = {"X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature-v3": "AAAA"}
    resp = await hub.backend.post("/webhook/hubspot", data=b"[]", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
