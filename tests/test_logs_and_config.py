"""Operational promises: no secret in any log line, clear start-up errors, safe migrations, bounded shutdown."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config, ConfigError
from crmsync.store.engines import open_database, parse_database_url
from crmsync.store.migrations.sqlite import MIGRATIONS
from mock_crm import keys as mock_keys

from .conftest import (
    CLIENT_SECRET,
    JWT_SECRET,
    PASSWORD,
    WEBHOOK_SECRET,
    crm_records,
    post_webhook,
    set_faults,
    sign_up,
    wait_status,
)  # fmt: skip
from .log_capture import captured_logs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every record from every logger, rendered by our formatter without its scrubbing safety net."""
    with captured_logs(logging.DEBUG) as stream:
        yield stream


async def test_no_secret_reaches_a_log_line(log_lines: io.StringIO, backend: TestClient, crm: TestServer) -> None:
    auth = await sign_up(backend, "secret-keeper@example.com")
    token = auth["Authorization"].split()[1]
    await backend.post("/authenticate", json={"email": "secret-keeper@example.com", "password": "wrong password!"})
    await backend.get("/users", headers={"Authorization": "Bearer " + token[:-3] + "abc"})
    resp = await backend.post(
        "/users", json={"name": "A B", "email": "ab@example.com", "phone": "1234567"}, headers=auth
    )
    user = await wait_status(backend, auth, (await resp.json())["id"], "synced")
    crm.app[mock_keys.tokens].key = b"rotated-key-" * 6  # forces a 401 and a new CRM token
    await set_faults(crm, fail_next=1, fail_status=500)
    await backend.patch(f"/users/{user['id']}", json={"phone": "7654321"}, headers=auth)
    await wait_status(backend, auth, user["id"], "synced")
    await post_webhook(backend, {"crm_id": user["crm_id"], "updated_fields": {"phone": "1"}, "timestamp": "x"})
    text = log_lines.getvalue()
    assert "sync_attempt" in text and "crm_token_refreshed" in text  # the flows above were logged
    for line in text.splitlines():
        json.loads(line)  # one JSON object per line
    webhook_key = WEBHOOK_SECRET.removeprefix("whsec_")
    for secret in (CLIENT_SECRET, JWT_SECRET, webhook_key, PASSWORD, "wrong password!", token, "eyJ"):
        assert secret not in text


def test_config_reads_the_environment() -> None:
    env = {"CRMSYNC_CRM_CLIENT_SECRET": CLIENT_SECRET, "CRMSYNC_JWT_SECRET": JWT_SECRET,
           "CRMSYNC_WEBHOOK_SECRET": f"{WEBHOOK_SECRET} {WEBHOOK_SECRET}", "CRMSYNC_PORT": "9000",
           "CRMSYNC_WORKERS": "3", "CRMSYNC_LOG_LEVEL": "debug"}  # fmt: skip
    config = Config.from_env(env)
    assert (config.port, config.workers, config.log_level, len(config.webhook_secrets)) == (9000, 3, "DEBUG", 2)
    assert config.database_url == "sqlite:///data/crmsync.db" and config.crm_url == "http://127.0.0.1:8081"
    assert CLIENT_SECRET not in repr(config) and JWT_SECRET not in repr(config)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"CRMSYNC_JWT_SECRET": ""}, "CRMSYNC_JWT_SECRET is not set"),
        ({"CRMSYNC_JWT_SECRET": "short"}, "CRMSYNC_JWT_SECRET is too short"),
        ({"CRMSYNC_PORT": "eighty"}, "CRMSYNC_PORT must be a whole number"),
        ({"CRMSYNC_PORT": "70000"}, "CRMSYNC_PORT must be between"),
        ({"CRMSYNC_CRM_URL": "ftp://x"}, "CRMSYNC_CRM_URL must be an http"),
        ({"CRMSYNC_WEBHOOK_SECRET": "not-base64-!!!"}, "CRMSYNC_WEBHOOK_SECRET"),
        ({"CRMSYNC_LOG_LEVEL": "LOUD"}, "CRMSYNC_LOG_LEVEL must be one of"),
        ({"CRMSYNC_RECONCILE_INTERVAL": "-1"}, "CRMSYNC_RECONCILE_INTERVAL must be at least 0"),
    ],
)
def test_bad_settings_name_the_variable(override: dict[str, str], needle: str) -> None:
    env = {"CRMSYNC_CRM_CLIENT_SECRET": CLIENT_SECRET, "CRMSYNC_JWT_SECRET": JWT_SECRET,
           "CRMSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET, **override}  # fmt: skip
    with pytest.raises(ConfigError, match=needle):
        Config.from_env(env)


@pytest.mark.parametrize("module", ["crmsync", "mock_crm"])
def test_a_missing_setting_stops_start_up_with_one_line(module: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMSYNC_", "MOCK_CRM_"))}
    result = subprocess.run(
        [sys.executable, "-m", module], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SECRET" in lines[0] and "Traceback" not in result.stderr


async def test_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    url = parse_database_url(f"sqlite:///{tmp_path / 'twice.db'}")
    for _ in range(2):
        db = await open_database(url)
        versions = [row[0] for row in await db.fetch("SELECT version FROM schema_version ORDER BY version")]
        mode = await db.fetchval("PRAGMA journal_mode")
        await db.close()
        assert versions == [version for version, _ in MIGRATIONS] and mode == "wal"


async def test_shutdown_lets_a_push_in_flight_finish(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
) -> None:
    await set_faults(crm, latency_ms=400)
    client = await aiohttp_client(create_app(make_config(shutdown_timeout=5.0)))
    auth = await sign_up(client)
    resp = await client.post(
        "/users", json={"name": "A B", "email": "ab@example.com", "phone": "1234567"}, headers=auth
    )
    user_id = (await resp.json())["id"]
    await client.close()  # while the create is still waiting on the slow CRM
    assert len(crm_records(crm.app)) == 1
    db = await open_database(parse_database_url(make_config().database_url))
    status, crm_id = await db.fetchrow("SELECT sync_status, crm_id FROM users WHERE id = $1", user_id)
    await db.close()
    assert status == "synced" and crm_id in crm_records(crm.app)
