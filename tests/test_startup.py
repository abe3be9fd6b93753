"""Start-up of the real process: a database URL that cannot work is one line naming the setting; the password
in a database URL never leaves the process (stderr, log file, /readyz, error bodies, metrics)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from crmsync.store.engines import open_database, parse_database_url

from .app_process import AppProcess, crmsync_env
from .conftest import JOHN, PASSWORD, eventually
from .pg_fixtures import create_database, drop_database

DB_PASSWORD = "pw-" + secrets.token_hex(12)
BAD_URLS = {
    "malformed": "postgresql://crmsync:{password}@127.0.0.1:port/crmsync",
    "no_host": "postgresql://crmsync:{password}@/crmsync",
    "bad_scheme": "mysql://crmsync:{password}@127.0.0.1:{port}/crmsync",
    "unreachable": "postgresql://crmsync:{password}@127.0.0.1:{port}/crmsync",
    "unreachable_password_parameter": "postgresql://crmsync@127.0.0.1:{port}/crmsync?sslmode=disable&password={password}",
}

TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"


def log_record(line: str) -> bool:
    """True for one of our JSON log lines (logging goes to stderr as well)."""
    try:
        return isinstance(record := json.loads(line), dict) and "event" in record
    except ValueError:
        return False


@pytest.mark.parametrize("case", sorted(BAD_URLS))
async def test_a_database_url_that_cannot_work_stops_start_up_with_one_line_without_its_password(
    case: str, tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> None:
    url = BAD_URLS[case].format(password=DB_PASSWORD, port=unused_tcp_port_factory())  # nothing listens there
    log_file = tmp_path / "crmsync.log"
    env = crmsync_env(CRMSYNC_DATABASE_URL=url, CRMSYNC_LOG_FILE=str(log_file))
    app = await AppProcess(unused_tcp_port_factory(), env, tmp_path).start()
    assert await app.exited() != 0
    stderr = app.stderr()
    said = [line for line in stderr.splitlines() if not log_record(line)]
    assert len(said) == 1 and said[0].startswith("crmsync: ") and "CRMSYNC_DATABASE_URL" in said[0], stderr
    assert "Traceback" not in stderr
    logged = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    assert DB_PASSWORD not in stderr + app.stdout() + logged


async def test_the_old_crmsync_db_setting_still_names_a_sqlite_file(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> None:
    env = crmsync_env(CRMSYNC_DB="old/contacts.db", CRMSYNC_CRM_URL=f"http://127.0.0.1:{unused_tcp_port_factory()}")
    app = await AppProcess(unused_tcp_port_factory(), env, tmp_path).start()
    try:
        async with aiohttp.ClientSession(base_url=app.url) as session:
            await app.serving(session)
            body = {"email": "old@example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
            async with session.post("/accounts", json=body) as resp:
                assert resp.status == 201
    finally:
        assert await app.stop() == 0
    assert '"db": "sqlite:///old/contacts.db"' in app.stderr()  # relative to the working directory
    db = await open_database(parse_database_url(f"sqlite:///{tmp_path / 'old' / 'contacts.db'}"))
    try:
        assert await db.fetchval("SELECT email FROM accounts") == "old@example.com"
    finally:
        await db.close()


def test_a_database_url_shows_no_password_wherever_it_is_given() -> None:
    url = parse_database_url(
        f"postgresql://u:{DB_PASSWORD}@db.example:5432/crm?sslmode=require&password=other-{DB_PASSWORD}"
    )
    assert url.passwords == (DB_PASSWORD, f"other-{DB_PASSWORD}")
    assert url.safe() == "postgresql://u:***@db.example:5432/crm?sslmode=require&password=***"
    assert DB_PASSWORD not in repr(url)


@pytest.fixture
async def password_url(pg_server_url: str) -> AsyncIterator[str]:
    """A database owned by a role of its own with a password (the test cluster trusts local connections,
    so the password is carried but not checked: enough to prove it never leaks)."""
    role = f"crmsync_owner_{uuid.uuid4().hex[:8]}"
    name = URL(await create_database(pg_server_url)).path.lstrip("/")
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{DB_PASSWORD}'")
        await admin.execute(f'ALTER DATABASE "{name}" OWNER TO {role}')
        yield str(URL(pg_server_url).with_user(role).with_password(DB_PASSWORD).with_path(f"/{name}"))
    finally:
        await drop_database(pg_server_url, name)
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_the_database_password_never_leaves_the_process(
    password_url: str, pg_server_url: str, crm: TestServer, tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> None:
    log_file = tmp_path / "crmsync.log"
    crm_url = str(crm.make_url("")).rstrip("/")
    env = crmsync_env(
        CRMSYNC_DATABASE_URL=password_url, CRMSYNC_LOG_FILE=str(log_file), CRMSYNC_LOG_LEVEL="DEBUG",
        CRMSYNC_CRM_URL=crm_url,
    )  # fmt: skip
    app = await AppProcess(unused_tcp_port_factory(), env, tmp_path).start()
    answers: list[str] = []

    async def call(session: aiohttp.ClientSession, method: str, path: str, **kwargs: object) -> tuple[int, str]:
        async with session.request(method, path, **kwargs) as resp:  # type: ignore[arg-type]
            answers.append(await resp.text())
            return resp.status, answers[-1]

    try:
        async with aiohttp.ClientSession(base_url=app.url) as session:
            await app.serving(session)
            assert (await call(session, "GET", "/readyz"))[0] == 200
            body = {"email": "owner@example.com", "password": PASSWORD, "password_confirmation": PASSWORD}
            status, text = await call(session, "POST", "/accounts", json=body)
            auth = {"Authorization": f"Bearer {json.loads(text)['auth_token']}"}
            status, text = await call(session, "POST", "/users", json=JOHN, headers=auth)
            assert status == 201, text
            user_id = json.loads(text)["id"]
            assert (await call(session, "POST", "/users", json=JOHN, headers=auth))[0] == 409
            assert (await call(session, "PATCH", f"/users/{user_id}", json={"phone": "1"}, headers=auth))[0] == 422
            assert (await call(session, "GET", f"/users/{uuid.uuid4()}", headers=auth))[0] == 404
            assert (await call(session, "POST", "/webhook", data=b"{}"))[0] == 401
            assert (await call(session, "GET", "/metrics"))[0] == 200

            async def synced() -> bool:
                return (
                    json.loads((await call(session, "GET", f"/users/{user_id}", headers=auth))[1])["sync_status"]
                    == "synced"
                )

            await eventually(synced)
            # The server ends every connection of ours: what the app says about that names no password either.
            admin = await asyncpg.connect(pg_server_url)
            try:
                ended = await admin.fetch(TERMINATE, URL(password_url).path.lstrip("/"))
            finally:
                await admin.close()
            assert ended and all(row[0] for row in ended)
            await call(session, "GET", "/readyz")
            await call(session, "GET", "/users", headers=auth)
            assert (await call(session, "GET", "/readyz"))[0] == 200  # a new connection replaces each lost one
    finally:
        assert await app.stop() == 0
    logged = log_file.read_text(encoding="utf-8")
    assert ":***@" in logged  # the URL is logged, its password masked
    leaks = [text for text in (*answers, app.stderr(), app.stdout(), logged) if DB_PASSWORD in text]
    assert leaks == []
