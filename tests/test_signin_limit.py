"""Sign-in brute-force limit: failures counted per email and per client address, in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from crmsync.app import create_app
from crmsync.config import Config
from crmsync.keys import db_key, signin_limiter_key
from crmsync.store.database import Database

from .conftest import CLIENT_SECRET, JWT_SECRET, PASSWORD, WEBHOOK_SECRET, sign_up
from .polling import eventually

WRONG = "not the password"
VICTIM = "victim@example.com"
ClientFactory = Callable[..., Awaitable[TestClient]]


async def sign_in(client: TestClient, email: str, password: str) -> ClientResponse:
    """POST /authenticate; the response is read, so its body and headers stay available."""
    resp = await client.post("/authenticate", json={"email": email, "password": password})
    await resp.read()
    return resp


async def fail_elsewhere(client: TestClient, email: str, times: int, first_address: int = 0) -> None:
    """Record wrong passwords for an email as if each came from its own client address (same limiter, same DB)."""

    async def wrong() -> None:
        return None

    limiter, db = client.app[signin_limiter_key], client.app[db_key]
    for n in range(first_address, first_address + times):
        assert await limiter.guard(db, email, f"198.51.100.{n}", wrong) is None


async def assert_limited(resp: ClientResponse, window: float = 900.0) -> None:
    """429 with the JSON error and a Retry-After of whole seconds within the window (plus one slice of it)."""
    assert resp.status == 429, await resp.text()
    body = await resp.json()
    assert body["error"] == "too_many_attempts"
    assert "try again" in body["message"].lower()
    assert 1 <= int(resp.headers["Retry-After"]) <= window * 1.1 + 1


@pytest.mark.parametrize("email", [VICTIM, "nobody@example.com", "Not An Email"])
async def test_ten_failures_then_429_even_for_the_right_password(backend: TestClient, email: str) -> None:
    # The same for an account that exists, one that does not, and an email that cannot exist: nothing tells them apart.
    await sign_up(backend, VICTIM)
    for _ in range(10):
        resp = await sign_in(backend, email, WRONG)
        assert resp.status == 401
        assert "Retry-After" not in resp.headers
    await assert_limited(await sign_in(backend, email, WRONG))
    await assert_limited(await sign_in(backend, email, PASSWORD))
    await assert_limited(await sign_in(backend, email.upper(), PASSWORD))  # the same email, normalised


async def test_the_email_limit_spans_client_addresses(backend: TestClient) -> None:
    await sign_up(backend, VICTIM)
    await sign_up(backend, "bystander@example.com")
    await fail_elsewhere(backend, VICTIM, 9)
    assert (await sign_in(backend, VICTIM, WRONG)).status == 401  # the tenth, from this test's own address
    await assert_limited(await sign_in(backend, VICTIM, PASSWORD))
    # This address has one failure: another account signs in from it as usual.
    assert (await sign_in(backend, "bystander@example.com", PASSWORD)).status == 200


async def test_the_address_limit_spans_emails(backend: TestClient) -> None:
    await sign_up(backend, VICTIM)
    for n in range(10):
        assert (await sign_in(backend, f"guess{n}@example.com", WRONG)).status == 401
    await assert_limited(await sign_in(backend, "guess99@example.com", WRONG))
    await assert_limited(await sign_in(backend, VICTIM, PASSWORD))

    # The same account from another address is not limited by this address's failures.
    async def right() -> str:
        return "signed in"

    limiter, db = backend.app[signin_limiter_key], backend.app[db_key]
    assert await limiter.guard(db, VICTIM, "203.0.113.7", right) == "signed in"


async def test_a_correct_sign_in_works_again_once_the_window_has_passed(
    aiohttp_client: ClientFactory, make_config: Callable[..., Config]
) -> None:
    # 4 s: ten password checks must fit in the window on a loaded machine too (1 s did not always).
    client = await aiohttp_client(create_app(make_config(signin_window=4.0)))
    await sign_up(client, VICTIM)
    for _ in range(10):
        assert (await sign_in(client, VICTIM, WRONG)).status == 401
    await assert_limited(await sign_in(client, VICTIM, PASSWORD), window=4.0)

    async def signed_in() -> bool:
        # Attempts refused meanwhile are not failures: they do not push the window on.
        return (await sign_in(client, VICTIM, PASSWORD)).status == 200

    await eventually(signed_in, timeout=15, interval=0.1)


async def failures_stored(db: Database) -> int:
    """All failures the limiter has stored, read from the database."""
    return int(await db.fetchval("SELECT COALESCE(SUM(failures), 0) FROM signin_failures"))


async def test_refused_attempts_write_nothing(backend: TestClient) -> None:
    db = backend.app[db_key]
    for _ in range(10):
        assert (await sign_in(backend, VICTIM, WRONG)).status == 401
    stored = await failures_stored(db)
    assert stored == 20  # ten failures, each counted for the email and for the address
    for n in range(20):
        assert (await sign_in(backend, f"other{n}@example.com" if n % 2 else VICTIM, WRONG)).status == 429
    assert await failures_stored(db) == stored


async def test_concurrent_guesses_get_no_more_than_the_limit(backend: TestClient) -> None:
    await sign_up(backend, VICTIM)
    responses = await asyncio.gather(*(sign_in(backend, VICTIM, WRONG) for _ in range(30)))
    statuses = sorted(resp.status for resp in responses)
    assert statuses == [401] * 10 + [429] * 20


async def test_a_successful_sign_in_clears_the_emails_failures(backend: TestClient) -> None:
    await sign_up(backend, VICTIM)
    await fail_elsewhere(backend, VICTIM, 9)
    assert (await sign_in(backend, VICTIM, PASSWORD)).status == 200
    await fail_elsewhere(backend, VICTIM, 10, first_address=100)  # ten more, as the count started again
    await assert_limited(await sign_in(backend, VICTIM, PASSWORD))


async def test_zero_turns_the_limit_off(aiohttp_client: ClientFactory, make_config: Callable[..., Config]) -> None:
    client = await aiohttp_client(create_app(make_config(signin_max_failures=0)))
    await sign_up(client, VICTIM)
    for _ in range(15):
        assert (await sign_in(client, VICTIM, WRONG)).status == 401
    assert (await sign_in(client, VICTIM, PASSWORD)).status == 200


def test_settings_are_read_from_the_environment() -> None:
    env = {"CRMSYNC_CRM_CLIENT_SECRET": CLIENT_SECRET, "CRMSYNC_JWT_SECRET": JWT_SECRET,
           "CRMSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET}  # fmt: skip
    default = Config.from_env(env)
    assert (default.signin_max_failures, default.signin_window, default.body_timeout) == (10, 900.0, 30.0)
    tuned = Config.from_env(
        {**env, "CRMSYNC_SIGNIN_MAX_FAILURES": "5", "CRMSYNC_SIGNIN_WINDOW": "60", "CRMSYNC_BODY_TIMEOUT": "7.5"}
    )
    assert (tuned.signin_max_failures, tuned.signin_window, tuned.body_timeout) == (5, 60.0, 7.5)
