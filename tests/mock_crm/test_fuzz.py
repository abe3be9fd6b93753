"""Hostile input on every mock CRM endpoint: a 2xx or a 4xx JSON error, never a 5xx, and no partial write.

Inputs known to trip a bug are kept out of the fuzzers and pinned in the strict xfail tests at the end:
an unknown charset on a form body, meeting timestamps before year 1000. When a fix turns one into an
XPASS, drop its xfail and widen the strategy again. Requests stay under aiohttp's 8190-byte line limit,
past which its parser answers in plain text before the app runs (test_over_long_path_is_json).
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import event, given, settings
from hypothesis import strategies as st
from yarl import URL

from mock_crm import keys
from tests.fuzz_strategies import (
    FUZZ,
    RAW_BODIES,
    answer,
    bodies,
    check_answer,
    content_types,
    dump,
    fits_request_line,
    header_text,
    idempotency_keys,
    ids,
    json_values,
    near,
    objects,
    odd_text,
    query_string,
    quote_id,
    raw_header_values,
    raw_request,
    tracebacks,
)
from tests.fuzz_strategies import headers as header_dict
from tests.mock_crm.helpers import ALICE, CLIENT_ID, CLIENT_SECRET, TOKEN_FORM, person

good_names = st.from_regex(r"[A-Za-zÀ-ÿ' .-]{0,30}[A-Za-z]", fullmatch=True)
good_emails = st.one_of(st.integers(0, 10**6).map(lambda n: f"user{n}@example.com"), st.emails())
good_phones = st.from_regex(r"\+?[0-9]{3}[ .-]?[0-9]{4,9}", fullmatch=True)
USER_FIELDS = {
    "name": st.one_of(good_names, odd_text),
    "email": st.one_of(good_emails, st.sampled_from([ALICE["email"], ALICE["email"].upper()]), odd_text),
    "phone": st.one_of(good_phones, st.from_regex(r"\+?[0-9 ().-]{5,45}", fullmatch=True), odd_text),
}
GOOD_USER = st.fixed_dictionaries({"name": good_names, "email": good_emails, "phone": good_phones})
USER = st.one_of(near(GOOD_USER, USER_FIELDS), objects(USER_FIELDS))
PARTIAL_USER = st.one_of(
    near(
        st.fixed_dictionaries({}, optional={"name": good_names, "email": good_emails, "phone": good_phones}),
        USER_FIELDS,
    ),
    objects(USER_FIELDS),
)
zones = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))])
# Years before 1000 are kept out: see test_meeting_timestamps_round_trip.
timestamps = st.one_of(
    st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=zones).map(datetime.isoformat),
    odd_text.filter(lambda t: not re.match(r"0\d{3}-", t)),
)
MEETING_FIELDS = {
    "title": st.one_of(good_names, odd_text),
    "starts_at": timestamps,
    "ends_at": st.one_of(st.none(), timestamps),
}
GOOD_MEETING = st.fixed_dictionaries(
    {"title": good_names, "starts_at": st.just("2026-12-01T10:00:00Z")},
    optional={"ends_at": st.sampled_from([None, "2026-12-01T11:00:00+00:00", "2026-12-01T09:00:00Z"])},
)
MEETING = st.one_of(near(GOOD_MEETING, MEETING_FIELDS), objects(MEETING_FIELDS))
any_content_type = st.one_of(st.none(), st.just("application/json"), content_types)
key_headers = st.one_of(st.none(), st.sampled_from(["k1", "k2"]), idempotency_keys)

_BANNED = {"Cc", "Cs", "Zl", "Zp"}


def text_ok(value: Any, max_len: int) -> bool:
    return (
        isinstance(value, str)
        and bool(value.strip())
        and len(value) <= max_len
        and not any(unicodedata.category(ch) in _BANNED for ch in value)
    )


def user_problems(record: Any) -> list[str]:
    """Why a stored user breaks the CRM's own rules."""
    problems = []
    if not text_ok(record.name, 200):
        problems.append(f"name {record.name!r}")
    if not (text_ok(record.email, 254) and re.fullmatch(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+", record.email)):
        problems.append(f"email {record.email!r}")
    digits = sum(ch in "0123456789" for ch in record.phone) if isinstance(record.phone, str) else 0
    if not (text_ok(record.phone, 40) and 7 <= digits <= 15 and re.fullmatch(r"\+?[0-9 ().-]+", record.phone)):
        problems.append(f"phone {record.phone!r}")
    return problems


def assert_store_valid(mock: TestClient) -> None:
    """Every record passes validation, emails are unique, meetings never end before they start."""
    store = mock.app[keys.store]
    bad = {crm_id: p for crm_id, user in store.users.items() if (p := user_problems(user))}
    assert bad == {}, bad
    emails = [user.email.casefold() for user in store.users.values()]
    assert len(emails) == len(set(emails)), "two users share an email"
    for meeting in store.meetings.values():
        assert text_ok(meeting.title, 200), meeting
        assert meeting.ends_at is None or meeting.ends_at >= meeting.starts_at, meeting


def snapshot(mock: TestClient) -> dict[str, Any]:
    """The whole store as JSON, to prove a rejected request changed nothing."""
    store = mock.app[keys.store]
    return {
        "users": {k: v.to_json() for k, v in store.users.items()},
        "meetings": {k: v.to_json() for k, v in store.meetings.items()},
        "faults": mock.app[keys.faults].to_json(),
    }


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert tracebacks(caplog.records) == []


@pytest.fixture
async def alice(mock: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """A user, plus a second one whose email an edit can collide with."""
    assert (await mock.post("/crm/users", json=person(1), headers=headers)).status == 201
    resp = await mock.post("/crm/users", json=ALICE, headers=headers)
    assert resp.status == 201
    return await resp.json()


@pytest.fixture
async def meeting(mock: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = await mock.post("/crm/meetings", json={"title": "M", "starts_at": "2026-12-01T10:00:00Z"}, headers=headers)
    assert resp.status == 201
    return await resp.json()


# --- /crm/token -------------------------------------------------------------------------------------------

_pair = st.one_of(
    st.tuples(st.sampled_from(["grant_type", "client_id", "client_secret", "scope"]), odd_text),
    st.tuples(odd_text, odd_text),
)
form_pairs = st.one_of(
    st.lists(st.one_of(st.sampled_from(list(TOKEN_FORM.items())), _pair), max_size=5),
    # The real form, shuffled, with at most one pair added or changed.
    st.builds(
        lambda extra, order: order + extra, st.lists(_pair, max_size=1), st.permutations(list(TOKEN_FORM.items()))
    ),
)


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode("utf-8", "surrogatepass")).decode()


forms = form_pairs.map(lambda pairs: query_string(pairs).encode())
token_auth = st.one_of(
    st.none(),
    st.just(basic(CLIENT_ID, CLIENT_SECRET)),
    st.builds(basic, st.one_of(st.just(CLIENT_ID), odd_text), st.one_of(st.just(CLIENT_SECRET), odd_text)),
    st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.sampled_from(["Basic", "Basic ", "Basic !!!", "Basic Og==", "basic " + base64.b64encode(b"a:b").decode()]),
    header_text,
)
token_bodies = st.one_of(
    st.tuples(st.just("application/x-www-form-urlencoded"), forms),
    st.tuples(st.just("application/x-www-form-urlencoded; charset=latin-1"), forms),
    st.tuples(
        st.just("application/x-www-form-urlencoded"), st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=64))
    ),
    st.tuples(
        st.just("application/json"),
        st.builds(dump, st.one_of(st.just(TOKEN_FORM), st.dictionaries(odd_text, json_values))),
    ),
    st.tuples(st.just("application/json"), st.sampled_from(RAW_BODIES)),
    st.tuples(any_content_type, bodies(st.dictionaries(odd_text, odd_text))),
)


@settings(FUZZ, max_examples=150)
@given(attempt=token_bodies, authorization=token_auth)
async def test_token_endpoint_survives_hostile_requests(
    mock: TestClient, caplog: pytest.LogCaptureFixture, attempt: tuple[str | None, bytes], authorization: str | None
) -> None:
    caplog.clear()
    content_type, body = attempt
    sent = header_dict(content_type)
    if authorization is not None:
        sent["Authorization"] = authorization
    issued = mock.app[keys.stats].tokens_issued
    ans = await answer(await mock.post("/crm/token", data=body, headers=sent))
    reply = check_answer(ans, (sent, body))
    assert ans.status in (200, 400, 401, 413), ans
    if ans.status == 200:
        assert reply["token_type"] == "Bearer" and reply["access_token"]
    else:
        assert reply.get("error_description") == reply["message"]
    assert mock.app[keys.stats].tokens_issued == issued + (ans.status == 200)
    assert_no_tracebacks(caplog)


# --- users ------------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(body=bodies(USER), content_type=any_content_type, key=key_headers)
async def test_create_user_survives_hostile_bodies(
    mock: TestClient,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
    key: str | None,
) -> None:
    caplog.clear()
    before = set(mock.app[keys.store].users)
    resp = await mock.post("/crm/users", data=body, headers={**headers, **header_dict(content_type, key)})
    ans = await answer(resp)
    reply = check_answer(ans, body)
    assert ans.status in (201, 400, 409, 413, 422), ans
    added = set(mock.app[keys.store].users) - before
    replayed = resp.headers.get("Idempotent-Replayed") == "true"
    assert added == ({reply["crm_id"]} if ans.status == 201 and not replayed else set())
    assert_store_valid(mock)
    assert_no_tracebacks(caplog)


def id_variants(real: str) -> list[str]:
    return [real, real.lower(), f" {real}", real + "\n", real + "/", quote(real)]


ROUTES = [
    ("GET", "/crm/users/{}"),
    ("PATCH", "/crm/users/{}"),
    ("DELETE", "/crm/users/{}"),
    ("POST", "/crm/_admin/users/{}/edit"),
    ("GET", "/crm/meetings/{}"),
    ("PATCH", "/crm/meetings/{}"),
    ("PUT", "/crm/meetings/{}/contacts"),
]


@settings(FUZZ, max_examples=150)
@given(
    route=st.sampled_from(ROUTES),
    raw_id=st.one_of(ids, st.just(0), st.integers(0, 5)),
    body=bodies(st.one_of(PARTIAL_USER, MEETING, st.fixed_dictionaries({"crm_ids": st.lists(odd_text, max_size=3)}))),
    if_match=st.one_of(st.none(), header_text, st.just('"2026-01-01T00:00:00.000000Z"')),
)
async def test_record_routes_survive_hostile_ids(
    mock: TestClient,
    headers: dict[str, str],
    alice: dict[str, Any],
    meeting: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    route: tuple[str, str],
    raw_id: str | int,
    body: bytes,
    if_match: str | None,
) -> None:
    caplog.clear()
    method, pattern = route
    real = meeting["meeting_id"] if "meetings" in pattern else alice["crm_id"]
    record_id = id_variants(real)[raw_id] if isinstance(raw_id, int) else raw_id
    url = URL(pattern.format(quote_id(record_id)), encoded=True)
    sent = {**headers, "Content-Type": "application/json"}
    if if_match is not None:
        sent["If-Match"] = if_match
    before = snapshot(mock)
    ans = await answer(await mock.request(method, url, data=body, headers=sent))
    check_answer(ans, (method, url, body))
    assert ans.status in (200, 204, 400, 404, 405, 409, 412, 413), ans
    if ans.status >= 400:
        assert snapshot(mock) == before
    if method == "DELETE" and ans.status == 204:  # put alice back for the next example
        assert alice["crm_id"] not in mock.app[keys.store].users
        recreated = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
        alice["crm_id"] = recreated["crm_id"]
    assert_store_valid(mock)
    assert_no_tracebacks(caplog)


@settings(FUZZ, max_examples=150)
@given(
    route=st.sampled_from(["PATCH /crm/users/{}", "POST /crm/_admin/users/{}/edit"]),
    body=bodies(PARTIAL_USER),
    content_type=any_content_type,
)
async def test_rejected_user_edits_change_nothing(
    mock: TestClient,
    headers: dict[str, str],
    alice: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    route: str,
    body: bytes,
    content_type: str | None,
) -> None:
    caplog.clear()
    method, pattern = route.split(" ")
    before = snapshot(mock)
    path = pattern.format(alice["crm_id"])
    ans = await answer(await mock.request(method, path, data=body, headers={**headers, **header_dict(content_type)}))
    reply = check_answer(ans, body)
    assert ans.status in (200, 400, 409, 413), ans
    after = snapshot(mock)
    if ans.status == 200:
        assert after["users"][alice["crm_id"]] == reply
        assert {k: v for k, v in after["users"].items() if k != alice["crm_id"]} == {
            k: v for k, v in before["users"].items() if k != alice["crm_id"]
        }
    else:
        assert after == before
    assert_store_valid(mock)
    assert_no_tracebacks(caplog)


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(dump(value)).decode().rstrip("=")


list_params = st.lists(
    st.one_of(
        st.tuples(st.just("updated_since"), st.one_of(timestamps, st.just("2026-01-01T00:00:00 00:00"))),
        st.tuples(
            st.just("limit"),
            st.one_of(st.integers(-5, 600).map(str), st.sampled_from(["٣", "1_0", "0500", "9" * 5000]), odd_text),
        ),
        st.tuples(
            st.just("cursor"),
            st.one_of(
                st.tuples(timestamps, st.one_of(odd_text, st.just("CRM1"))).map(list).map(cursor_of),
                json_values.map(cursor_of),
                st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
                odd_text,
            ),
        ),
        st.tuples(odd_text, odd_text),
    ),
    max_size=4,
).filter(fits_request_line)


@settings(FUZZ, max_examples=150)
@given(params=list_params)
async def test_listing_survives_hostile_queries(
    mock: TestClient,
    headers: dict[str, str],
    alice: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    params: list[tuple[str, str]],
) -> None:
    caplog.clear()
    url = URL("/crm/users?" + query_string(params), encoded=True)
    ans = await answer(await mock.get(url, headers=headers))
    reply = check_answer(ans, params)
    assert ans.status in (200, 400), ans
    if ans.status == 200:
        assert isinstance(reply["items"], list)
    assert_no_tracebacks(caplog)


batch_items = st.one_of(
    USER,
    st.builds(
        lambda user, key: {**user, "idempotency_key": key}, USER, st.one_of(st.sampled_from(["b1", "b2"]), json_values)
    ),
    json_values,
)
BATCH = st.one_of(
    st.fixed_dictionaries({"items": st.lists(batch_items, min_size=1, max_size=6)}),
    objects({"items": st.lists(batch_items, max_size=3)}),
    st.just({"items": [ALICE] * 101}),
)


@settings(FUZZ, max_examples=120)
@given(body=bodies(BATCH), content_type=any_content_type)
async def test_batch_creates_exactly_the_items_it_reports(
    mock: TestClient,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
) -> None:
    caplog.clear()
    before = set(mock.app[keys.store].users)
    ans = await answer(await mock.post("/crm/users/batch", data=body, headers={**headers, **header_dict(content_type)}))
    reply = check_answer(ans, body)
    assert ans.status in (200, 400, 413), ans
    added = set(mock.app[keys.store].users) - before
    if ans.status == 200:
        for result in reply["results"]:
            event(f"item {result['status']}")
            assert result["status"] in (201, 400, 409, 422), result
            if result["status"] >= 400:
                assert isinstance(result["body"]["error"], str) and isinstance(result["body"]["message"], str)
        created = {r["body"]["crm_id"] for r in reply["results"] if r["status"] == 201}
        assert added == created - before
    else:
        assert added == set()
    assert_store_valid(mock)
    assert_no_tracebacks(caplog)


# --- meetings ---------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(
    route=st.sampled_from(["POST /crm/meetings", "PATCH /crm/meetings/{}", "PUT /crm/meetings/{}/contacts"]),
    body=bodies(st.one_of(MEETING, objects({"crm_ids": st.lists(st.one_of(st.just("$ALICE"), odd_text), max_size=3)}))),
    key=key_headers,
)
async def test_meeting_writes_survive_hostile_bodies(
    mock: TestClient,
    headers: dict[str, str],
    alice: dict[str, Any],
    meeting: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    route: str,
    body: bytes,
    key: str | None,
) -> None:
    caplog.clear()
    method, pattern = route.split(" ")
    body = body.replace(b'"$ALICE"', json.dumps(alice["crm_id"]).encode())
    before = snapshot(mock)
    resp = await mock.request(
        method,
        pattern.format(meeting["meeting_id"]),
        data=body,
        headers={**headers, **header_dict("application/json", key)},
    )
    ans = await answer(resp)
    reply = check_answer(ans, body)
    assert ans.status in (200, 201, 400, 413, 422), ans
    after = snapshot(mock)
    if ans.status >= 400:
        assert after == before
    elif ans.status == 201 and resp.headers.get("Idempotent-Replayed") != "true":
        assert set(after["meetings"]) - set(before["meetings"]) == {reply["meeting_id"]}
    assert_store_valid(mock)
    assert_no_tracebacks(caplog)


# --- admin, and the rest ----------------------------------------------------------------------------------

_FAULT_VALUES = {
    "rate_limit": st.floats(0, 1e6),
    "rate_burst": st.integers(1, 10**6),
    "failure_rate": st.floats(0, 1),
    "lost_reply_rate": st.floats(0, 1),
    "latency_ms": st.floats(0, 60_000),
    "fail_next": st.integers(0, 10**6),
    "fail_status": st.integers(400, 599),
}
# One setting for sure, any of the others.
GOOD_FAULTS = st.sampled_from(sorted(_FAULT_VALUES)).flatmap(
    lambda key: st.fixed_dictionaries(
        {key: _FAULT_VALUES[key]}, optional={k: v for k, v in _FAULT_VALUES.items() if k != key}
    )
)
FAULT_FIELDS = {
    "rate_limit": st.one_of(st.floats(), st.integers()),
    "rate_burst": st.one_of(st.floats(), st.integers()),
    "failure_rate": st.floats(),
    "lost_reply_rate": st.floats(),
    "latency_ms": st.one_of(st.floats(), st.integers()),
    "fail_next": st.integers(),
    "fail_status": st.integers(),
}
CALM = {"rate_limit": 0, "rate_burst": 1, "failure_rate": 0, "lost_reply_rate": 0, "latency_ms": 0, "fail_next": 0,
        "fail_status": 503}  # fmt: skip


@settings(FUZZ, max_examples=120)
@given(body=bodies(st.one_of(near(GOOD_FAULTS, FAULT_FIELDS), objects(FAULT_FIELDS))), content_type=any_content_type)
async def test_fault_settings_change_all_or_nothing(
    mock: TestClient,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
) -> None:
    caplog.clear()
    before = mock.app[keys.faults].to_json()
    ans = await answer(
        await mock.put("/crm/_admin/faults", data=body, headers={**headers, **header_dict(content_type)})
    )
    reply = check_answer(ans, body)
    assert ans.status in (200, 400, 413), ans
    now = mock.app[keys.faults].to_json()
    if ans.status == 200:
        assert reply == now
        sent = json.loads(body)
        assert all(now[k] == v for k, v in sent.items() if k != "rate_burst"), (sent, now)
        resp = await mock.put("/crm/_admin/faults", json=CALM, headers=headers)  # calm again for the next example
        assert resp.status == 200
    else:
        assert now == before
    assert_no_tracebacks(caplog)


@settings(FUZZ, max_examples=60)
@given(
    path=st.sampled_from(["/healthz", "/crm/_admin/faults", "/crm/_admin/stats", "/crm/users"]),
    authorization=st.one_of(st.none(), header_text, st.builds(lambda t: "Bearer " + t, header_text)),
    body=st.sampled_from(RAW_BODIES[:20]),
)
async def test_reads_ignore_bodies_and_refuse_bad_tokens(
    mock: TestClient,
    caplog: pytest.LogCaptureFixture,
    path: str,
    authorization: str | None,
    body: bytes,
) -> None:
    caplog.clear()
    sent = {} if authorization is None else {"Authorization": authorization}
    ans = await answer(await mock.get(path, data=body, headers=sent))
    check_answer(ans, (path, authorization))
    assert ans.status == (200 if path == "/healthz" else 401), ans
    assert_no_tracebacks(caplog)


RAW_TARGETS = [
    ("GET", b"/crm/users", b"Authorization"),
    ("POST", b"/crm/token", b"Authorization"),
    ("POST", b"/crm/users", b"Idempotency-Key"),
    ("PATCH", b"/crm/users/$ALICE", b"If-Match"),
    ("POST", b"/crm/users", b"Content-Type"),
    ("POST", b"/crm/token", b"Content-Type"),
]


@settings(FUZZ, max_examples=100)
@given(target=st.sampled_from(RAW_TARGETS), value=raw_header_values)
async def test_raw_header_bytes(
    mock: TestClient,
    headers: dict[str, str],
    alice: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    target: tuple[str, bytes, bytes],
    value: bytes,
) -> None:
    """Header bytes a str-based client cannot send: obs-text, not UTF-8."""
    caplog.clear()
    method, path, header = target
    path = path.replace(b"$ALICE", alice["crm_id"].encode())
    lines = [(b"Authorization", headers["Authorization"].encode()), (b"Content-Type", b"application/json")]
    lines = [(name, v) for name, v in lines if name != header] + [(header, value)]
    if path == b"/crm/token" and header == b"Content-Type":
        # An unknown charset on a form body is a known 500: test_unknown_form_charset_is_400.
        value = value.replace(b"charset", b"cs")
        lines[-1] = (header, value)
    body = b"grant_type=client_credentials" if path == b"/crm/token" else json.dumps(person(7)).encode()
    before = snapshot(mock)
    host, port = mock.server.host, mock.server.port
    assert port is not None
    ans = await raw_request(host, port, method, path, lines, body)
    check_answer(ans, (method, path, lines))
    if ans.status >= 400:
        assert snapshot(mock) == before
    assert_no_tracebacks(caplog)


WRITE_ROUTES = [
    ("POST", "/crm/users"),
    ("PATCH", "/crm/users/{crm_id}"),
    ("POST", "/crm/users/batch"),
    ("POST", "/crm/_admin/users/{crm_id}/edit"),
    ("POST", "/crm/meetings"),
    ("PATCH", "/crm/meetings/{meeting_id}"),
    ("PUT", "/crm/meetings/{meeting_id}/contacts"),
    ("PUT", "/crm/_admin/faults"),
    ("POST", "/crm/token"),
]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"])
async def test_every_raw_body_on_every_route(
    mock: TestClient,
    headers: dict[str, str],
    alice: dict[str, Any],
    meeting: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    content_type: str,
) -> None:
    """The whole catalogue of hostile bodies, on every write route: no luck involved."""
    before, edited = snapshot(mock), False
    for raw in RAW_BODIES:
        for method, pattern in WRITE_ROUTES:
            path = pattern.format(crm_id=alice["crm_id"], meeting_id=meeting["meeting_id"])
            sent = {**headers, "Content-Type": content_type}
            ans = await answer(await mock.request(method, path, data=raw, headers=sent))
            check_answer(ans, (method, path, raw[:80]))
            assert ans.status in (200, 400, 401, 409, 413, 415), (method, path, raw[:80], ans)
            edited |= ans.status == 200 and path != "/crm/token"  # UTF-16 JSON is JSON to Python
    assert edited or snapshot(mock) == before
    assert_store_valid(mock)
    assert_no_tracebacks(caplog)


# --- bugs the fuzzers found, kept as regression tests; the last is aiohttp's own (strict xfail) ------------


@pytest.mark.parametrize("charset", ["bogus", "utf-42", "x" * 50])
async def test_unknown_form_charset_is_400(mock: TestClient, charset: str) -> None:
    resp = await mock.post(
        "/crm/token",
        data=b"grant_type=client_credentials",
        headers={"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"},
    )
    assert resp.status == 400, await resp.text()


async def test_meeting_timestamps_round_trip(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.post("/crm/meetings", json={"title": "M", "starts_at": "0999-01-01T00:00:00Z"}, headers=headers)
    if resp.status == 400:  # refusing such dates up front is a fix too
        return
    created = await resp.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created["starts_at"]), created
    url = f"/crm/meetings/{created['meeting_id']}"
    resp = await mock.patch(url, json={"starts_at": created["starts_at"]}, headers=headers)
    assert resp.status == 200, await resp.text()


@pytest.mark.xfail(strict=True, reason="aiohttp answers an over-long request line in plain text, before any middleware")
async def test_over_long_path_is_json(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.get("/crm/users/" + "x" * 9000, headers=headers)
    assert 400 <= resp.status < 500
    assert resp.content_type == "application/json", await resp.text()
