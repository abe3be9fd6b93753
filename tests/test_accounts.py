"""Sign-up, sign-in and the token every /users route needs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from aiohttp.test_utils import TestClient

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key
from crmsync.store import accounts

from .conftest import JWT_SECRET, PASSWORD, sign_up
from .polling import eventually


async def test_sign_up_returns_a_working_token(backend: TestClient) -> None:
    body = {"email": "Ada@Example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
    resp = await backend.post("/accounts", json=body)
    assert resp.status == 201
    account = await resp.json()
    assert set(account) == {"id", "email", "auth_token", "expires_at"}
    assert account["email"] == "ada@example.com"
    claims = jwt.decode(account["auth_token"], JWT_SECRET, algorithms=["HS256"], issuer="crmsync")
    assert claims["sub"] == account["id"]
    assert 23.9 * 3600 < claims["exp"] - claims["iat"] <= 24 * 3600
    assert (await backend.get("/users", headers={"Authorization": f"Bearer {account['auth_token']}"})).status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.com", "password": "short", "password_confirmation": "short"}, "password"),
        (
            {"email": "a@example.com", "password": PASSWORD, "password_confirmation": PASSWORD + "x"},
            "password_confirmation",
        ),
        ({"email": "not-an-email", "password": PASSWORD, "password_confirmation": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": PASSWORD}, "password_confirmation"),
        ({"email": "a@example.com", "password": 12345678, "password_confirmation": 12345678}, "password"),
    ],
)
async def test_sign_up_validation(backend: TestClient, body: dict, field: str) -> None:
    resp = await backend.post("/accounts", json=body)
    assert resp.status == 422
    error = await resp.json()
    assert error["error"] == "validation_failed"
    assert field in error["fields"]


async def test_duplicate_account_email_is_409(backend: TestClient) -> None:
    await sign_up(backend, "dup@example.com")
    body = {"email": "DUP@example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
    resp = await backend.post("/accounts", json=body)
    assert resp.status == 409
    assert (await resp.json())["error"] == "duplicate_email"


async def test_authenticate(backend: TestClient) -> None:
    await sign_up(backend, "sam@example.com")
    resp = await backend.post("/authenticate", json={"email": "sam@example.com", "password": PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    assert body["expires_at"].endswith("Z")
    assert (await backend.get("/users", headers={"Authorization": body["auth_token"]})).status == 200


@pytest.mark.parametrize(
    "credentials",
    [{"email": "sam@example.com", "password": "wrong password"}, {"email": "nobody@example.com", "password": PASSWORD}],
)
async def test_wrong_credentials_give_the_same_401(backend: TestClient, credentials: dict) -> None:
    await sign_up(backend, "sam@example.com")
    resp = await backend.post("/authenticate", json=credentials)
    assert resp.status == 401
    body = await resp.json()
    assert body["error"] == "invalid_credentials"
    assert "email or password" in body["message"]


def _forge(claims: dict, key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _alg_none(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_bad_tokens_are_401(backend: TestClient, auth: dict[str, str]) -> None:
    token = auth["Authorization"].split()[1]
    account_id = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], issuer="crmsync")["sub"]
    now = datetime.now(UTC)
    valid = {"sub": account_id, "iat": now, "exp": now + timedelta(hours=1), "iss": "crmsync"}
    header, payload, signature = token.split(".")
    cases = {
        "missing": {},
        "empty": {"Authorization": ""},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "two words": {"Authorization": "Token abc def"},
        "expired": {"Authorization": "Bearer " + _forge({**valid, "exp": now - timedelta(seconds=5)})},
        "tampered": {"Authorization": f"Bearer {header}.{payload}.{signature[:-4]}AAAA"},
        "wrong key": {"Authorization": "Bearer " + _forge(valid, key="another-secret-" + "f" * 64)},
        "alg none": {"Authorization": "Bearer " + _alg_none({**valid, "iat": 1, "exp": 4102444800})},
        "HS512": {"Authorization": "Bearer " + _forge(valid, algorithm="HS512")},
        "no exp": {"Authorization": "Bearer " + _forge({"sub": account_id, "iat": now, "iss": "crmsync"})},
        "unknown account": {"Authorization": "Bearer " + _forge({**valid, "sub": "no-such-account"})},
    }
    for name, headers in cases.items():
        resp = await backend.get("/users", headers=headers)
        assert resp.status == 401, name
        body = await resp.json()
        assert body["error"] == "unauthorized", name
        assert token not in json.dumps(body)


async def test_every_users_route_needs_a_token(backend: TestClient) -> None:
    some_id = "5b1d7a56-0000-4000-8000-000000000000"
    routes = [
        ("POST", "/users"), ("GET", "/users"), ("GET", f"/users/{some_id}"), ("PUT", f"/users/{some_id}"),
        ("PATCH", f"/users/{some_id}"), ("POST", f"/users/{some_id}/sync"), ("GET", f"/users/{some_id}/history"),
    ]  # fmt: skip
    for method, path in routes:
        resp = await backend.request(method, path, json={})
        assert resp.status == 401, (method, path)


async def test_a_deleted_accounts_token_stops_working_within_the_cache_age(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config]
) -> None:
    client = await aiohttp_client(create_app(make_config(account_cache_ttl=0.2)))
    auth = await sign_up(client, "leaver@example.com")
    other = await sign_up(client, "stayer@example.com")
    # Both tokens were verified and their accounts seen to exist, so both are cached now.
    assert (await client.get("/users", headers=auth)).status == 200
    assert (await client.get("/users", headers=other)).status == 200
    account_id = jwt.decode(auth["Authorization"].split()[1], JWT_SECRET, algorithms=["HS256"], issuer="crmsync")["sub"]
    started = time.monotonic()
    assert await accounts.delete(client.app[db_key], account_id)

    async def refused() -> bool:
        resp = await client.get("/users", headers=auth)
        return resp.status == 401 and (await resp.json())["error"] == "unauthorized"

    await eventually(refused, timeout=3)
    assert time.monotonic() - started < 0.2 + 1.0
    assert (await client.get("/users", headers=other)).status == 200
    assert not await accounts.delete(client.app[db_key], account_id)  # already gone
