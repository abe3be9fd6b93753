"""Hostile input on every backend endpoint: a 2xx or a 4xx JSON error, never a 5xx, and no partial write.

Inputs known to trip a bug are kept out of the fuzzers and pinned in the strict xfail tests at the end:
non-UTF-8 bytes in Authorization, webhook-id and webhook-signature, lone surrogates in a token's sub,
signed webhook bodies nested past the recursion limit. When a fix turns one into an XPASS, drop its
xfail and widen the strategy again. Requests stay under aiohttp's 8190-byte line limit, past which its
parser answers in plain text before the app runs (test_over_long_path_is_json).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import event, given, settings
from hypothesis import strategies as st
from yarl import URL

from crmsync.keys import db_key
from crmsync.store.database import Database

from .conftest import JOHN, JWT_SECRET, PASSWORD, WEBHOOK_SECRET, eventually, sign_webhook, wait_status
from .fuzz_strategies import (
    DEEP,
    FUZZ,
    RAW_BODIES,
    answer,
    bodies,
    check_answer,
    content_types,
    dump,
    duplicate_keys,
    fits_request_line,
    header_text,
    headers,
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
    sign_raw,
    tracebacks,
)

TAKEN = {"name": "Taken", "email": "taken@example.com", "phone": "+44 20 7946 0000"}
OWNER = "owner@example.com"  # the account behind the `auth` fixture

good_names = st.from_regex(r"[A-Za-zÀ-ÿ' .-]{0,30}[A-Za-z]", fullmatch=True)
good_emails = st.one_of(st.integers(0, 10**6).map(lambda n: f"user{n}@example.com"), st.emails())
good_phones = st.from_regex(r"\+?[0-9]{3}[ .-]?[0-9]{4,9}", fullmatch=True)
names = st.one_of(st.sampled_from(["Ann", " Ann Lee ", "Zoë Ünïcødé", "x" * 200, "李小龙"]), good_names, odd_text)
emails = st.one_of(
    st.sampled_from([JOHN["email"], TAKEN["email"], "TAKEN@Example.com", "new@example.com"]),
    st.integers(0, 30).map(lambda n: f"user{n}@example.com"),
    good_emails,
    odd_text,
)
phones = st.one_of(
    st.sampled_from(["123-456-7890", "+1 (555) 010-2000", "1234567", "123456789012345", "1234567890123456"]),
    st.from_regex(r"\+?[0-9 ().-]{5,24}", fullmatch=True),
    odd_text,
)
passwords = st.one_of(st.just(PASSWORD), st.text(max_size=12), st.sampled_from(["x" * 8, "x" * 1024, "x" * 1025]))
CONTACT_FIELDS = {"name": names, "email": emails, "phone": phones}
GOOD_FIELDS = {"name": good_names, "email": st.one_of(good_emails, st.just(TAKEN["email"])), "phone": good_phones}
GOOD_CONTACT = st.fixed_dictionaries({"name": good_names, "email": good_emails, "phone": good_phones})
CONTACT = st.one_of(near(GOOD_CONTACT, CONTACT_FIELDS), objects(CONTACT_FIELDS))
PARTIAL_CONTACT = st.one_of(
    near(
        st.fixed_dictionaries({}, optional={"name": good_names, "email": good_emails, "phone": good_phones}),
        CONTACT_FIELDS,
    ),
    objects(CONTACT_FIELDS),
)
SIGN_UP_FIELDS = {"email": emails, "password": passwords, "password_confirmation": passwords}
SIGN_UP = st.one_of(
    objects(SIGN_UP_FIELDS),
    near(
        st.builds(lambda e, p: {"email": e, "password": p, "password_confirmation": p}, good_emails, passwords),
        SIGN_UP_FIELDS,
    ),
)
SIGN_IN_FIELDS = {"email": st.one_of(st.just(OWNER), emails), "password": passwords}
SIGN_IN = st.one_of(objects(SIGN_IN_FIELDS), near(st.just({"email": OWNER, "password": PASSWORD}), SIGN_IN_FIELDS))
any_content_type = st.one_of(st.none(), st.just("application/json"), content_types)


# --- the database, read directly -------------------------------------------------------------------------


@pytest.fixture
def db(backend: TestClient) -> Database:
    """The backend's database (either engine), read as committed."""
    return backend.app[db_key]


async def query(db: Database, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one read outside the app's transactions."""
    return [tuple(row) for row in await db.fetch(sql, *args)]


async def count(db: Database, table: str) -> int:
    return (await query(db, f"SELECT COUNT(*) FROM {table}"))[0][0]  # noqa: S608 (a fixed table name)


async def contact(db: Database, user_id: str) -> dict[str, str]:
    row = (await query(db, "SELECT name, email, phone FROM users WHERE id = $1", user_id))[0]
    return dict(zip(("name", "email", "phone"), row, strict=True))


def contact_problems(name: Any, email: Any, phone: Any) -> list[str]:
    """Why a stored contact breaks the API's own rules (name 1-200, email with @, phone 7-15 digits)."""
    problems = []
    if not (isinstance(name, str) and 1 <= len(name) <= 200 and name == name.strip() and "\x00" not in name):
        problems.append(f"name {name!r}")
    if not (isinstance(email, str) and "@" in email and len(email) <= 254 and email == email.lower()):
        problems.append(f"email {email!r}")
    digits = sum(ch in "0123456789" for ch in phone) if isinstance(phone, str) else 0
    if not (7 <= digits <= 15 and re.fullmatch(r"\+?[0-9 ().-]+", phone)):
        problems.append(f"phone {phone!r}")
    return problems


async def assert_consistent(db: Database) -> None:
    """Every user has its outbox job and valid fields: no write stopped half-way."""
    orphans = await query(db, "SELECT u.id FROM users u LEFT JOIN sync_jobs j ON j.entity_id = u.id WHERE j.id IS NULL")
    assert orphans == [], f"users without a sync job: {orphans}"
    bad = {
        row[0]: p
        for row in await query(db, "SELECT id, name, email, phone FROM users")
        if (p := contact_problems(*row[1:]))
    }
    assert bad == {}, f"stored users with invalid fields: {bad}"


async def _idle(db: Database) -> bool:
    return not await query(db, "SELECT 1 FROM sync_jobs WHERE state = 'queued' LIMIT 1")


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert tracebacks(caplog.records) == []


@pytest.fixture
async def john(backend: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    """A user already in the CRM, plus a second one whose email an edit can collide with."""
    resp = await backend.post("/users", json=TAKEN, headers=auth)
    assert resp.status == 201
    resp = await backend.post("/users", json=JOHN, headers=auth)
    assert resp.status == 201
    return await wait_status(backend, auth, (await resp.json())["id"], "synced")


# --- accounts ---------------------------------------------------------------------------------------------


@FUZZ
@given(body=bodies(SIGN_UP), content_type=any_content_type)
async def test_sign_up_survives_hostile_bodies(
    backend: TestClient, db: Database, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str | None
) -> None:
    caplog.clear()
    before = await count(db, "accounts")
    ans = await answer(await backend.post("/accounts", data=body, headers=headers(content_type)))
    check_answer(ans, body)
    assert ans.status in (201, 400, 409, 413, 422), ans
    assert await count(db, "accounts") == before + (ans.status == 201)
    assert_no_tracebacks(caplog)


@settings(FUZZ, max_examples=50)  # every well-formed attempt costs one scrypt
@given(body=bodies(SIGN_IN), content_type=any_content_type)
async def test_authenticate_survives_hostile_bodies(
    backend: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture, body: bytes, content_type: str | None
) -> None:
    caplog.clear()
    ans = await answer(await backend.post("/authenticate", data=body, headers=headers(content_type)))
    reply = check_answer(ans, body)
    assert ans.status in (200, 400, 401, 413, 422, 429), ans  # 429 once the wrong guesses reach the limit
    if ans.status == 200:
        assert set(reply) == {"auth_token", "expires_at"}
    assert_no_tracebacks(caplog)


# --- users ------------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=120)
@given(body=bodies(CONTACT), content_type=any_content_type, key=st.one_of(st.none(), idempotency_keys))
async def test_create_user_survives_hostile_bodies(
    backend: TestClient,
    auth: dict[str, str],
    db: Database,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
    key: str | None,
) -> None:
    caplog.clear()
    before = await count(db, "users")
    resp = await backend.post("/users", data=body, headers={**auth, **headers(content_type, key)})
    ans = await answer(resp)
    reply = check_answer(ans, body)
    assert ans.status in (201, 400, 409, 413, 422), ans
    assert await count(db, "users") == before + (ans.status == 201)
    if ans.status == 201:
        assert await contact(db, reply["id"]) == {k: reply[k] for k in ("name", "email", "phone")}
    await assert_consistent(db)
    assert_no_tracebacks(caplog)


cursors = st.one_of(
    st.one_of(st.integers(0), st.sampled_from([2**63 - 1, 2**63, 10**20, 10**400])).map(
        lambda n: base64.urlsafe_b64encode(f"u:{n}".encode()).decode().rstrip("=")
    ),
    st.binary(max_size=24).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    st.sampled_from(["", "=", "dTo", "dTot", "dTotMQ", "djox", "dTrfmw", "dTox" + "=" * 10]),
    odd_text,
)
list_params = st.lists(
    st.one_of(
        st.tuples(
            st.just("sync_status"), st.one_of(st.sampled_from(["pending", "synced", "failed", "PENDING"]), odd_text)
        ),
        st.tuples(
            st.just("limit"),
            st.one_of(
                st.integers(-5, 600).map(str), st.sampled_from(["1_0", "٣", " 5 ", "0x10", "9" * 5000]), odd_text
            ),
        ),
        st.tuples(st.just("cursor"), cursors),
        st.tuples(odd_text, odd_text),
    ),
    max_size=4,
).filter(fits_request_line)


@settings(FUZZ, max_examples=120)
@given(params=list_params)
async def test_list_users_survives_hostile_queries(
    backend: TestClient,
    auth: dict[str, str],
    john: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    params: list[tuple[str, str]],
) -> None:
    caplog.clear()
    url = URL("/users?" + query_string(params), encoded=True)
    ans = await answer(await backend.get(url, headers=auth))
    reply = check_answer(ans, params)
    assert ans.status in (200, 422), ans
    if ans.status == 200:
        assert isinstance(reply["items"], list)
    assert_no_tracebacks(caplog)


USER_ROUTES = [
    ("GET", "/users/{}"),
    ("PUT", "/users/{}"),
    ("PATCH", "/users/{}"),
    ("POST", "/users/{}/sync"),
    ("GET", "/users/{}/history"),
    ("POST", "/users/{}/reconcile"),
]


def id_variants(real: str) -> list[str]:
    """Spellings of a real id that a lax parser might take for it."""
    return [real, real.upper(), "{" + real + "}", "urn:uuid:" + real, real.replace("-", ""), f" {real} ", real + "\n"]


@settings(FUZZ, max_examples=150)
@given(
    route=st.sampled_from(USER_ROUTES),
    raw_id=st.one_of(ids, st.just(0), st.integers(0, 6)),
    body=bodies(CONTACT),
)
async def test_user_routes_survive_hostile_ids(
    backend: TestClient,
    auth: dict[str, str],
    john: dict[str, Any],
    db: Database,
    caplog: pytest.LogCaptureFixture,
    route: tuple[str, str],
    raw_id: str | int,
    body: bytes,
) -> None:
    caplog.clear()
    method, pattern = route
    user_id = id_variants(john["id"])[raw_id] if isinstance(raw_id, int) else raw_id
    url = URL(pattern.format(quote_id(user_id)), encoded=True)
    before = await count(db, "users")
    ans = await answer(
        await backend.request(method, url, data=body, headers={**auth, "Content-Type": "application/json"})
    )
    check_answer(ans, (method, url, body))
    assert ans.status in (200, 202, 400, 404, 405, 409, 413, 422, 503), ans
    assert await count(db, "users") == before
    await assert_consistent(db)
    assert_no_tracebacks(caplog)


@settings(FUZZ, max_examples=150)
@given(
    method=st.sampled_from(["PUT", "PATCH"]),
    body=bodies(st.one_of(CONTACT, PARTIAL_CONTACT)),
    content_type=any_content_type,
)
async def test_rejected_edits_leave_the_user_unchanged(
    backend: TestClient,
    auth: dict[str, str],
    john: dict[str, Any],
    db: Database,
    caplog: pytest.LogCaptureFixture,
    method: str,
    body: bytes,
    content_type: str | None,
) -> None:
    caplog.clear()
    path = f"/users/{john['id']}"
    before = await (await backend.get(path, headers=auth)).json()
    ans = await answer(await backend.request(method, path, data=body, headers={**auth, **headers(content_type)}))
    reply = check_answer(ans, (method, body))
    assert ans.status in (200, 400, 409, 413, 422), ans
    after = await (await backend.get(path, headers=auth)).json()
    fields = ("name", "email", "phone")
    if ans.status == 200:
        assert {k: after[k] for k in fields} == {k: reply[k] for k in fields}
    else:
        assert {k: after[k] for k in fields} == {k: before[k] for k in fields}
    await assert_consistent(db)
    assert_no_tracebacks(caplog)


# --- authentication ---------------------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hs256(header: bytes, payload: bytes, secret: str) -> str:
    """A JWS over arbitrary header and payload bytes, signed with secret (no library checks on the way)."""
    signing_input = f"{_b64url(header)}.{_b64url(payload)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


JWT_HEADER = b'{"alg":"HS256","typ":"JWT"}'
NOW = int(time.time())
claim_values = st.one_of(json_values, st.integers(NOW - 10**6, NOW + 10**6), st.sampled_from(["crmsync", NOW]))
CLAIM_FIELDS = {"sub": st.one_of(st.uuids().map(str), claim_values), "exp": claim_values, "iat": claim_values,
                "iss": claim_values, "nbf": claim_values}  # fmt: skip
# Right in every way but the subject, which names no account (or is not even a string).
GOOD_CLAIMS = st.fixed_dictionaries(
    {"sub": st.one_of(st.uuids().map(str), odd_text, json_values), "exp": st.just(NOW + 3600), "iat": st.just(NOW),
     "iss": st.just("crmsync")}
)  # fmt: skip
claims = st.one_of(near(GOOD_CLAIMS, CLAIM_FIELDS), st.fixed_dictionaries({}, optional=CLAIM_FIELDS), json_values)
jwt_headers = st.one_of(
    st.just(JWT_HEADER),
    st.just(JWT_HEADER),
    st.just(JWT_HEADER),
    st.sampled_from([b'{"alg":"none"}', b'{"alg":"HS512"}', b'{"alg":"HS256","crit":["x"]}', b"{}", b"[]", b"\xff"]),
    st.builds(dump, json_values),
)


@st.composite
def authorizations(draw: st.DrawFn) -> tuple[str | None, str]:
    """An Authorization header value and how it was made: 'valid' ones name the real account."""
    kind = draw(st.sampled_from(["missing", "text", "bearer-text", "forged", "wrong-secret", "valid"]))
    if kind == "missing":
        return None, kind
    if kind == "text":
        return draw(header_text), kind
    if kind == "bearer-text":
        return draw(st.sampled_from(["Bearer ", "bearer ", "Basic ", "Bearer  ", "Token "])) + draw(header_text), kind
    if kind == "valid":
        return None, kind  # the test sends the real token, to prove the route answers it
    secret = JWT_SECRET if kind == "forged" else draw(st.sampled_from(["", "x", JWT_SECRET[:-1]]))
    body = draw(claims)
    if isinstance(body, dict) and isinstance(body.get("sub"), str) and _has_surrogate(body["sub"]):
        # Lone surrogates in sub are a known 500: test_surrogate_token_subject_is_401.
        body["sub"] = body["sub"].encode("utf-8", "replace").decode()
    # Cut to fit aiohttp's 8190-byte header line; past it the parser answers in plain text (see the last test).
    return ("Bearer " + hs256(draw(jwt_headers), dump(body), secret))[:8000], kind


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


PROTECTED = [("GET", "/users"), ("POST", "/users"), ("GET", f"/users/{uuid.uuid4()}"), ("POST", "/reconcile")]


@settings(FUZZ, max_examples=150)
@given(route=st.sampled_from(PROTECTED), authorization=authorizations())
async def test_hostile_tokens_are_401(
    backend: TestClient,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    route: tuple[str, str],
    authorization: tuple[str | None, str],
) -> None:
    caplog.clear()
    method, path = route
    value, kind = authorization
    event(f"token {kind}")
    if kind == "valid":
        value = auth["Authorization"]
    sent = {} if value is None else {"Authorization": value}
    ans = await answer(await backend.request(method, path, headers=sent, json={}))
    check_answer(ans, (method, path, value))
    if kind == "valid":
        assert ans.status != 401, ans
    else:
        assert ans.status == 401, (value, ans)
    assert_no_tracebacks(caplog)


# --- webhooks ---------------------------------------------------------------------------------------------


@st.composite
def unsigned(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A webhook the CRM did not sign: garbage, the wrong key, a stale stamp, or a signature for other bytes."""
    body = draw(st.one_of(st.builds(dump, json_values), st.sampled_from(RAW_BODIES[:20]), st.binary(max_size=64)))
    msg_id = draw(st.one_of(st.just("evt_1"), header_text))
    kind = draw(st.sampled_from(["garbage", "wrong-key", "stale", "future", "other-body", "partial"]))
    if kind == "garbage":
        sent = {
            name: draw(header_text)
            for name in draw(st.sets(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"])))
        }
        return body, sent
    secret = WEBHOOK_SECRET if kind != "wrong-key" else "whsec_" + base64.b64encode(b"another key entirely").decode()
    moment = int(time.time()) + {"stale": -600, "future": 600}.get(kind, 0)
    sent = sign_raw(secret, msg_id or "evt_1", body if kind != "other-body" else body + b" ", moment)
    if kind == "partial":
        del sent[draw(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]))]
    return body, sent


@settings(FUZZ, max_examples=120)
@given(attempt=unsigned())
async def test_unsigned_webhooks_are_401(
    backend: TestClient,
    john: dict[str, Any],
    db: Database,
    caplog: pytest.LogCaptureFixture,
    attempt: tuple[bytes, dict[str, str]],
) -> None:
    caplog.clear()
    body, sent = attempt
    events = await count(db, "webhook_events")
    ans = await answer(await backend.post("/webhook", data=body, headers=sent))
    check_answer(ans, attempt)
    assert ans.status == 401, (attempt, ans)
    assert await count(db, "webhook_events") == events
    assert await contact(db, john["id"]) == {k: john[k] for k in ("name", "email", "phone")}
    assert_no_tracebacks(caplog)


zones = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59))])
timestamps = st.one_of(
    st.integers(-86_400 * 400, 240).map(lambda s: f"$NOW{s:+d}"),
    st.datetimes(timezones=zones).map(datetime.isoformat),  # year 1 to 9999, at the edges of the range too
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0999-01-01T00:00:00Z"]),
    odd_text,
)
WEBHOOK_FIELDS = {
    "crm_id": st.one_of(st.just("$CRM_ID"), st.just("CRMnobody"), odd_text),
    "updated_fields": st.one_of(PARTIAL_CONTACT, st.just({})),
    "timestamp": timestamps,
    "event_id": st.one_of(st.just("$MSG_ID"), odd_text),
    "source": st.one_of(st.sampled_from(["crm", "api"]), odd_text),
}
GOOD_WEBHOOK = st.fixed_dictionaries(
    {
        "crm_id": st.just("$CRM_ID"),
        "updated_fields": st.sampled_from(["name", "email", "phone"]).flatmap(
            lambda key: st.fixed_dictionaries(
                {key: GOOD_FIELDS[key]}, optional={k: v for k, v in GOOD_FIELDS.items() if k != key}
            )
        ),
        "timestamp": st.integers(-86_400, 60).map(lambda s: f"$NOW{s:+d}"),
        "event_id": st.just("$MSG_ID"),
        "source": st.sampled_from(["crm", "api"]),
    }
)
WEBHOOK = st.one_of(near(GOOD_WEBHOOK, WEBHOOK_FIELDS), objects(WEBHOOK_FIELDS))


def resolve(value: Any, crm_id: str, msg_id: str) -> Any:
    """Fill the placeholders only a running test knows: the real crm_id, the header's id, 'now'."""
    if isinstance(value, dict):
        return {k: resolve(v, crm_id, msg_id) for k, v in value.items()}
    if value == "$CRM_ID":
        return crm_id
    if value == "$MSG_ID":
        return msg_id
    if isinstance(value, str) and value.startswith("$NOW"):
        return (datetime.now(UTC) + timedelta(seconds=int(value[4:]))).isoformat()
    return value


# Deeply nested signed bodies are a known 500: test_deeply_nested_signed_webhook_is_400.
SIGNABLE = tuple(raw for raw in RAW_BODIES if raw not in DEEP)


@settings(FUZZ, max_examples=150)
@given(
    payload=st.one_of(near(GOOD_WEBHOOK, WEBHOOK_FIELDS), near(GOOD_WEBHOOK, WEBHOOK_FIELDS), WEBHOOK, json_values),
    encoding=st.sampled_from(["ascii", "utf-8", "ascii", "utf-8", "duplicate-keys", "raw"]),
    raw=st.sampled_from(SIGNABLE),
    msg_id=st.one_of(
        st.integers(0, 5).map(lambda n: f"evt_{n}"),
        st.uuids().map(lambda u: f"evt_{u.hex}"),
        # A blank or non-ASCII webhook-id is refused before the body matters (see the raw-header tests).
        header_text.filter(lambda text: text.strip() != "" and text.isascii()),
    ),
)
async def test_signed_hostile_webhooks_are_4xx_or_applied(
    backend: TestClient,
    john: dict[str, Any],
    db: Database,
    caplog: pytest.LogCaptureFixture,
    payload: Any,
    encoding: str,
    raw: bytes,
    msg_id: str,
) -> None:
    caplog.clear()
    value = resolve(payload, john["crm_id"], msg_id)
    if encoding == "raw":
        body = raw
    elif encoding == "duplicate-keys" and isinstance(value, dict):
        body = duplicate_keys(value, None)
    else:
        body = dump(value, ensure_ascii=encoding == "ascii")
    # Earlier examples may have left work running (a push back of a value we normalise, or a read of
    # the CRM's record when our field times lie in the future): let it land first.
    await eventually(lambda: _idle(db))
    before = await contact(db, john["id"])
    ans = await answer(await backend.post("/webhook", data=body, headers=sign_raw(WEBHOOK_SECRET, msg_id, body)))
    reply = check_answer(ans, body)
    assert ans.status in (200, 400, 404, 409, 413, 422), (body, ans)
    after = await contact(db, john["id"])
    if ans.status != 200 or reply["result"] != "applied":
        assert after == before, (body, ans)
    await assert_consistent(db)
    assert_no_tracebacks(caplog)


# --- the rest ---------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(
    body=bodies(st.dictionaries(odd_text, json_values)),
    content_type=any_content_type,
    key=st.one_of(st.none(), idempotency_keys),
)
async def test_routes_without_a_body_ignore_hostile_input(
    backend: TestClient,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
    key: str | None,
) -> None:
    caplog.clear()
    sent = headers(content_type, key)
    for method, path, status in [
        ("POST", "/reconcile", 202),
        ("POST", "/users/sync-failed", 202),
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),  # the CRM is up: ready
    ]:
        ans = await answer(await backend.request(method, path, data=body, headers={**auth, **sent}))
        check_answer(ans, (path, body))
        assert ans.status == status, (path, ans)
    assert_no_tracebacks(caplog)


RAW_TARGETS = [
    ("GET", b"/users", b"Authorization"),
    ("POST", b"/users", b"Content-Type"),
    ("POST", b"/webhook", b"webhook-id"),
    ("POST", b"/webhook", b"webhook-timestamp"),
    ("POST", b"/webhook", b"webhook-signature"),
    ("GET", b"/users?cursor=", None),
    ("GET", b"/users?limit=", None),
    ("GET", b"/users/", None),
]


@settings(FUZZ, max_examples=100)
@given(target=st.sampled_from(RAW_TARGETS), value=raw_header_values)
async def test_raw_header_bytes_and_escaped_paths(
    backend: TestClient,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    target: tuple[str, bytes, bytes | None],
    value: bytes,
) -> None:
    """Header bytes a str-based client cannot send (obs-text, not UTF-8), and %-escaped bytes in paths."""
    caplog.clear()
    method, path, header = target
    lines = [(b"Authorization", auth["Authorization"].encode())]
    webhook = [(b"webhook-id", b"evt_1"), (b"webhook-timestamp", str(int(time.time())).encode()),
               (b"webhook-signature", b"v1,AAAA")]  # fmt: skip
    if header is None:
        path += quote(value).encode()
    elif header == b"Authorization":
        lines = [(header, value)]
    elif header.startswith(b"webhook-"):
        lines = [(name, value if name == header else v) for name, v in webhook]
    else:
        lines.append((header, value))
    host, port = backend.server.host, backend.server.port
    assert port is not None
    ans = await raw_request(host, port, method, path, lines, b"{}")
    check_answer(ans, (method, path, lines))
    if path == b"/webhook":
        assert ans.status == 401, ans
    assert_no_tracebacks(caplog)


WRITE_ROUTES = [
    ("POST", "/accounts"),
    ("POST", "/authenticate"),
    ("POST", "/users"),
    ("PUT", "/users/{id}"),
    ("PATCH", "/users/{id}"),
    ("POST", "/users/{id}/sync"),
    ("POST", "/users/{id}/reconcile"),
    ("POST", "/users/sync-failed"),
    ("POST", "/reconcile"),
]


async def test_every_raw_body_on_every_route(
    backend: TestClient, auth: dict[str, str], john: dict[str, Any], db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole catalogue of hostile bodies, on every route, signed webhooks too: no luck involved."""
    before, edited = await contact(db, john["id"]), False
    for raw in RAW_BODIES:
        for method, pattern in WRITE_ROUTES:
            path = pattern.format(id=john["id"])
            ans = await answer(
                await backend.request(method, path, data=raw, headers={**auth, **headers("application/json")})
            )
            check_answer(ans, (method, path, raw[:80]))
            edited |= method in ("PUT", "PATCH") and ans.status == 200  # UTF-16 JSON is JSON to Python
        if raw not in DEEP:  # test_deeply_nested_signed_webhook_is_400
            ans = await answer(
                await backend.post("/webhook", data=raw, headers=sign_raw(WEBHOOK_SECRET, "evt_raw", raw))
            )
            check_answer(ans, ("/webhook", raw[:80]))
            assert ans.status in (400, 413, 422), (raw[:80], ans)
    assert edited or await contact(db, john["id"]) == before
    await assert_consistent(db)
    assert_no_tracebacks(caplog)


# --- pinned regressions (each was a 5xx or a wrong merge before the fix) ----------------------------------


async def test_huge_cursor_is_422(backend: TestClient, auth: dict[str, str]) -> None:
    cursor = base64.urlsafe_b64encode(b"u:99999999999999999999").decode().rstrip("=")
    resp = await backend.get(f"/users?cursor={cursor}", headers=auth)
    assert resp.status == 422, await resp.text()


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_out_of_range_webhook_timestamp_is_422(backend: TestClient, stamp: str) -> None:
    body, sent = sign_webhook({"crm_id": "CRM1", "updated_fields": {"name": "X"}, "timestamp": stamp})
    resp = await backend.post("/webhook", data=body, headers=sent)
    assert resp.status == 422, await resp.text()


async def test_ancient_webhook_timestamp_does_not_outrank_later_changes(
    backend: TestClient, john: dict[str, Any], db: Database
) -> None:
    ancient = {"crm_id": john["crm_id"], "updated_fields": {"name": "Ancient"}, "timestamp": "0999-01-01T00:00:00Z"}
    body, sent = sign_webhook(ancient)
    await backend.post("/webhook", data=body, headers=sent)  # applied or refused: either way it must not win later
    current = {**ancient, "updated_fields": {"name": "Current"}, "timestamp": datetime.now(UTC).isoformat()}
    body, sent = sign_webhook(current)
    resp = await backend.post("/webhook", data=body, headers=sent)
    assert (await resp.json())["result"] == "applied"
    assert (await contact(db, john["id"]))["name"] == "Current"


# --- bugs the fuzzers found, kept as regression tests; the last is aiohttp's own (strict xfail) ------------


async def test_non_utf8_authorization_is_401(backend: TestClient) -> None:
    host, port = backend.server.host, backend.server.port
    assert port is not None
    ans = await raw_request(host, port, "GET", b"/users", [(b"Authorization", b"Bearer \xff")])
    assert ans.status == 401, ans


@pytest.mark.parametrize("header", [b"webhook-id", b"webhook-signature"])
async def test_non_utf8_webhook_headers_are_401(backend: TestClient, header: bytes) -> None:
    host, port = backend.server.host, backend.server.port
    assert port is not None
    lines = [(b"webhook-id", b"evt_1"), (b"webhook-timestamp", str(int(time.time())).encode()),
             (b"webhook-signature", b"v1,AAAA")]  # fmt: skip
    lines = [(name, value + b"\xff" if name == header else value) for name, value in lines]
    ans = await raw_request(host, port, "POST", b"/webhook", lines, b"{}")
    assert ans.status == 401, ans


@pytest.mark.parametrize("raw", DEEP, ids=["arrays", "objects"])
async def test_deeply_nested_signed_webhook_is_400(backend: TestClient, raw: bytes) -> None:
    resp = await backend.post("/webhook", data=raw, headers=sign_raw(WEBHOOK_SECRET, "evt_deep", raw))
    assert resp.status == 400, await resp.text()


async def test_surrogate_token_subject_is_401(backend: TestClient) -> None:
    """Needs the signing secret, so low risk; but verify_token trusts any str subject."""
    now = int(time.time())
    claims = b'{"sub": "\\ud800", "exp": %d, "iat": %d, "iss": "crmsync"}' % (now + 3600, now)
    resp = await backend.get("/users", headers={"Authorization": "Bearer " + hs256(JWT_HEADER, claims, JWT_SECRET)})
    assert resp.status == 401, await resp.text()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"name": "John\x01Smith"}, id="control-char"),
        pytest.param({"name": "John\u2028Smith"}, id="line-separator"),
        pytest.param({"phone": "1" + " " * 45 + "234567"}, id="phone-over-40-chars"),
        pytest.param({"name": "Zoë\u200dÜnïcødé 李"}, id="format-char-and-letters"),
    ],
)
async def test_every_accepted_contact_syncs(backend: TestClient, auth: dict[str, str], fields: dict[str, str]) -> None:
    resp = await backend.post("/users", json={**JOHN, **fields}, headers=auth)
    if resp.status == 422:  # refused up front: the fix
        return
    assert resp.status == 201
    user_id = (await resp.json())["id"]

    async def settled() -> dict[str, Any] | None:
        user = await (await backend.get(f"/users/{user_id}", headers=auth)).json()
        return user if user["sync_status"] != "pending" else None

    user = await eventually(settled)
    assert user["sync_status"] == "synced", user["last_error"]


@pytest.mark.xfail(strict=True, reason="aiohttp answers an over-long request line in plain text, before any middleware")
async def test_over_long_path_is_json(backend: TestClient, auth: dict[str, str]) -> None:
    resp = await backend.get("/users/" + "x" * 9000, headers=auth)
    assert 400 <= resp.status < 500
    assert resp.content_type == "application/json", await resp.text()
