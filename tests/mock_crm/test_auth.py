"""Token endpoint (RFC 6749 client credentials) and bearer-token enforcement."""

from __future__ import annotations

import time

import aiohttp
import jwt
from aiohttp.test_utils import TestClient

from mock_crm import keys
from tests.mock_crm.helpers import CLIENT_ID, CLIENT_SECRET, TOKEN_FORM, MakeClient, eventually


async def test_healthz_needs_no_auth(mock: TestClient) -> None:
    resp = await mock.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_token_with_form_fields(mock: TestClient) -> None:
    resp = await mock.post("/crm/token", data=TOKEN_FORM)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    body = await resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], mock.app[keys.tokens].key, algorithms=["HS256"])
    assert claims["sub"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]
    assert mock.app[keys.stats].tokens_issued == 1


async def test_token_with_basic_auth(mock: TestClient) -> None:
    resp = await mock.post(
        "/crm/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": aiohttp.encode_basic_auth(CLIENT_ID, CLIENT_SECRET)},
    )
    assert resp.status == 200
    assert (await resp.json())["access_token"]


async def test_token_with_json_body(mock: TestClient) -> None:
    resp = await mock.post("/crm/token", json=TOKEN_FORM)
    assert resp.status == 200
    assert mock.app[keys.stats].tokens_issued == 1


async def test_wrong_secret_is_invalid_client(mock: TestClient) -> None:
    resp = await mock.post("/crm/token", data={**TOKEN_FORM, "client_secret": "nope"})
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid_client"
    assert "WWW-Authenticate" not in resp.headers


async def test_wrong_basic_client_gets_basic_challenge(mock: TestClient) -> None:
    resp = await mock.post(
        "/crm/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": aiohttp.encode_basic_auth("other", CLIENT_SECRET)},
    )
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="crm"'
    assert (await resp.json())["error"] == "invalid_client"


async def test_bad_and_missing_grant_type(mock: TestClient) -> None:
    resp = await mock.post("/crm/token", data={**TOKEN_FORM, "grant_type": "password"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "unsupported_grant_type"
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    resp = await mock.post("/crm/token", data=form)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_malformed_token_requests_are_invalid_request(mock: TestClient) -> None:
    bodies = [
        {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": ["client_credentials"]},
        {"json": {**TOKEN_FORM, "client_secret": 5}},
        {
            "data": b"grant_type=client_credentials&grant_type=x",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        {"data": b"grant_type=\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {"data": b"<xml/>", "headers": {"Content-Type": "text/xml"}},
    ]
    for kwargs in bodies:
        resp = await mock.post("/crm/token", **kwargs)
        assert resp.status == 400, kwargs
        assert (await resp.json())["error"] == "invalid_request", kwargs
    assert mock.app[keys.stats].tokens_issued == 0


async def test_api_requires_bearer(mock: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not.a.jwt"}):
        resp = await mock.get("/crm/users", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert (await resp.json())["error"] == "invalid_token"


async def test_expired_forged_and_alg_none_tokens_are_refused(mock: TestClient, headers: dict[str, str]) -> None:
    key = mock.app[keys.tokens].key
    now = int(time.time())
    claims = {"sub": CLIENT_ID, "iat": now - 100, "exp": now - 10, "jti": "x"}
    expired = jwt.encode(claims, key, algorithm="HS256")
    forged = jwt.encode({**claims, "exp": now + 100}, b"k" * 32, algorithm="HS256")
    unsigned = jwt.encode({**claims, "exp": now + 100}, None, algorithm="none")
    no_exp = jwt.encode({"sub": CLIENT_ID, "iat": now, "jti": "x"}, key, algorithm="HS256")
    for token in (expired, forged, unsigned, no_exp):
        resp = await mock.get("/crm/users", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401, token
        assert (await resp.json())["error"] == "invalid_token"
    assert (await mock.get("/crm/users", headers=headers)).status == 200


async def test_token_expires_after_ttl(make_mock: MakeClient) -> None:
    client = await make_mock(token_ttl=1)
    resp = await client.post("/crm/token", data=TOKEN_FORM)
    auth = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}

    async def refused() -> bool:
        return (await client.get("/crm/users", headers=auth)).status == 401

    await eventually(refused, timeout=3.0, interval=0.05)


async def test_admin_routes_need_bearer_too(mock: TestClient) -> None:
    resp = await mock.get("/crm/_admin/faults")
    assert resp.status == 401
