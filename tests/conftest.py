"""Fixtures: the real mock CRM and the real backend, each served over real HTTP, on a real database.

Every test that runs the backend runs twice: on a SQLite file under tmp_path and on a fresh database
of a real PostgreSQL server (the `engine` parameter).
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from standardwebhooks import Webhook

from crmsync.app import create_app
from crmsync.config import Config
from mock_crm import keys as mock_keys
from mock_crm.app import create_app as create_mock_app
from mock_crm.config import MockConfig

from .exit_guard import pytest_sessionfinish, pytest_unconfigure  # noqa: F401 (hooks)
from .pg_fixtures import create_database, drop_database, pg_database_url, pg_server_url  # noqa: F401 (fixtures)
from .polling import eventually

CLIENT_ID = "crmsync"
CLIENT_SECRET = "test-client-secret-4f1c2a9b"
JWT_SECRET = "test-jwt-secret-" + "0123456789abcdef" * 4
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-key-0123456789abcdef").decode()
PASSWORD = "correct horse battery"
JOHN = {"name": "John Smith", "email": "john.smith@example.com", "phone": "123-456-7890"}


@pytest.fixture
def mock_config() -> MockConfig:
    """A well-behaved CRM; tests change faults at run time through the admin API."""
    return MockConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, seed=7)


@pytest.fixture
async def crm(aiohttp_server: Callable[..., Awaitable[TestServer]], mock_config: MockConfig) -> TestServer:
    """The mock CRM served on 127.0.0.1."""
    return await aiohttp_server(create_mock_app(mock_config))


@pytest.fixture
def crm_app(crm: TestServer) -> web.Application:
    """The mock CRM's application, to read its store and counters."""
    return crm.app


NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine under test; a test for one engine only parametrizes `engine` itself."""
    return str(request.param)


@pytest.fixture
async def made_databases() -> AsyncIterator[list[tuple[str, str]]]:
    """The PostgreSQL databases a test made, as (server, name), dropped once every app of the test stopped."""
    made: list[tuple[str, str]] = []
    yield made
    for server, name in made:
        await drop_database(server, name)


@pytest.fixture
async def aiohttp_client(
    made_databases: list[tuple[str, str]], aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> Callable[..., Awaitable[TestClient]]:
    """pytest-aiohttp's client, set up after (so closed before) the databases its apps use are dropped."""
    return aiohttp_client


@pytest.fixture
def new_database(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, made_databases: list[tuple[str, str]]
) -> NewDatabase:
    """Make fresh, empty databases of the engine under test (a test with several apps needs several)."""
    numbers = itertools.count()
    server = request.getfixturevalue("pg_server_url") if engine == "postgres" else ""

    async def make() -> str:
        if engine == "sqlite":
            return f"sqlite:///{tmp_path / f'crmsync-{next(numbers)}.db'}"
        url = await create_database(server)
        made_databases.append((server, url.rsplit("/", 1)[-1].split("?")[0]))
        return url

    return make


@pytest.fixture
async def database_url(new_database: NewDatabase) -> str:
    """The test's database."""
    return await new_database()


@pytest.fixture
def make_config(database_url: str, crm: TestServer) -> Callable[..., Config]:
    """Build a backend Config pointing at the mock CRM and the test's database."""

    def build(**overrides: Any) -> Config:
        base = Config(
            crm_client_secret=CLIENT_SECRET,
            jwt_secret=JWT_SECRET,
            webhook_secrets=(WEBHOOK_SECRET,),
            database_url=database_url,
            crm_url=str(crm.make_url("")).rstrip("/"),
            crm_client_id=CLIENT_ID,
            workers=4,
            crm_backoff=0.01,
            job_backoff=(0.2, 0.2, 0.2, 0.2, 0.2),
            reconcile_interval=0,
            shutdown_timeout=2.0,
        )
        return attrs.evolve(base, **overrides)

    return build


@pytest.fixture
async def backend(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config]
) -> TestClient:
    """The backend app with its workers running."""
    return await aiohttp_client(create_app(make_config()))


async def sign_up(client: TestClient, email: str = "owner@example.com") -> dict[str, str]:
    """Create an account and return an Authorization header for it."""
    resp = await client.post(
        "/accounts", json={"email": email, "password": PASSWORD, "password_confirmation": PASSWORD}
    )
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['auth_token']}"}


@pytest.fixture
async def auth(backend: TestClient) -> dict[str, str]:
    """Authorization header of a fresh account on the backend."""
    return await sign_up(backend)


def crm_session(crm: TestServer) -> aiohttp.ClientSession:
    """An HTTP session for calling the running mock CRM directly, as a test."""
    return aiohttp.ClientSession(base_url=crm.make_url("/"))


async def crm_token(crm: TestServer) -> dict[str, str]:
    """An Authorization header for calling the mock CRM directly."""
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    async with crm_session(crm) as session, session.post("/crm/token", data=form) as resp:
        assert resp.status == 200
        return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def crm_call(crm: TestServer, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Call the mock CRM with a valid token; return (status, JSON body)."""
    headers = await crm_token(crm)
    async with crm_session(crm) as session, session.request(method, path, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def set_faults(crm: TestServer, **faults: Any) -> None:
    """Change the mock CRM's misbehaviour through its admin API."""
    status, body = await crm_call(crm, "PUT", "/crm/_admin/faults", json=faults)
    assert status == 200, body


def crm_records(crm_app: web.Application) -> dict[str, Any]:
    """The CRM's user records by crm_id."""
    return crm_app[mock_keys.store].users


async def get_user(client: TestClient, auth: dict[str, str], user_id: str) -> dict[str, Any]:
    """GET /users/{id} as JSON, asserting 200."""
    resp = await client.get(f"/users/{user_id}", headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def wait_status(
    client: TestClient, auth: dict[str, str], user_id: str, status: str, timeout: float = 10.0
) -> dict:
    """Poll a user until it reaches a sync status."""

    async def check() -> dict[str, Any] | None:
        user = await get_user(client, auth, user_id)
        return user if user["sync_status"] == status else None

    return await eventually(check, timeout)


def sign_webhook(
    payload: dict[str, Any], secret: str = WEBHOOK_SECRET, age: float = 0.0, msg_id: str = ""
) -> tuple[bytes, dict[str, str]]:
    """Sign a payload as a Standard Webhooks sender would, with the standardwebhooks package."""
    body = json.dumps(payload).encode()
    msg_id = msg_id or payload.get("event_id") or f"evt_{uuid.uuid4().hex}"
    moment = datetime.now(UTC) - timedelta(seconds=age)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
    return body, headers


async def post_webhook(client: TestClient, payload: dict[str, Any], **sign_options: Any) -> tuple[int, Any]:
    """Sign and POST a webhook to the backend; return (status, JSON body)."""
    body, headers = sign_webhook(payload, **sign_options)
    resp = await client.post("/webhook", data=body, headers=headers)
    return resp.status, await resp.json()


@attrs.frozen
class Live:
    """The mock CRM delivering signed webhooks to a running backend, both over real HTTP."""

    crm: TestServer
    backend: TestClient
    auth: dict[str, str]

    @property
    def crm_app(self) -> web.Application:
        return self.crm.app


LiveFactory = Callable[..., Awaitable[Live]]


@pytest.fixture
def make_live(
    new_database: NewDatabase,  # first: set up before the apps, so it is torn down after them
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    unused_tcp_port_factory: Callable[[], int],
    mock_config: MockConfig,
) -> LiveFactory:
    """Build a CRM whose webhooks reach a backend on a port reserved before either starts."""

    async def build(**overrides: Any) -> Live:
        port = unused_tcp_port_factory()
        mock = attrs.evolve(
            mock_config,
            webhook_url=f"http://127.0.0.1:{port}/webhook",
            webhook_secret=WEBHOOK_SECRET,
            webhook_backoff=0.05,
        )
        crm = await aiohttp_server(create_mock_app(mock))
        config = Config(
            crm_client_secret=CLIENT_SECRET,
            jwt_secret=JWT_SECRET,
            webhook_secrets=(WEBHOOK_SECRET,),
            database_url=await new_database(),
            crm_url=str(crm.make_url("")).rstrip("/"),
            workers=4,
            crm_backoff=0.01,
            job_backoff=(0.2,) * 5,
            reconcile_interval=0,
        )
        backend = await aiohttp_client(create_app(attrs.evolve(config, **overrides)), server_kwargs={"port": port})
        return Live(crm, backend, await sign_up(backend))

    return build


@pytest.fixture
async def live(make_live: LiveFactory) -> Live:
    """A CRM whose webhooks reach the backend, both over real HTTP."""
    return await make_live()


async def retrying(client: TestClient, auth: dict[str, str], user_id: str) -> bool:
    """True while the user's push failed and waits to be retried (failed, with a next_retry_at)."""
    user = await get_user(client, auth, user_id)
    return user["sync_status"] == "failed" and user["next_retry_at"] is not None


async def synced_user(client: TestClient, auth: dict[str, str], **fields: str) -> dict[str, Any]:
    """Create a user (John Smith, with any fields replaced) and wait until it is synced."""
    resp = await client.post("/users", json={**JOHN, **fields}, headers=auth)
    assert resp.status == 201, await resp.text()
    return await wait_status(client, auth, (await resp.json())["id"], "synced")
