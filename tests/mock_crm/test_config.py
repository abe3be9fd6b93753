"""MockConfig.from_env, the command line, and JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from mock_crm.__main__ import main
from mock_crm.config import ConfigError, MockConfig
from tests.mock_crm.helpers import CLIENT_SECRET, TOKEN_FORM, WEBHOOK_SECRET, eventually

BASE = {"MOCK_CRM_CLIENT_SECRET": CLIENT_SECRET, "MOCK_CRM_WEBHOOK_SECRET": WEBHOOK_SECRET}


def test_defaults_from_env() -> None:
    config = MockConfig.from_env(BASE)
    assert (config.host, config.port, config.client_id) == ("127.0.0.1", 8081, "crmsync")
    assert config.webhook_url == "http://127.0.0.1:8080/webhook"
    assert config.token_ttl == 3600 and config.rate_limit == 0 and config.rate_burst == 1
    assert config.failure_rate == config.lost_reply_rate == config.latency_ms == 0
    assert config.log_file is None and config.log_level == "INFO"
    assert (config.webhook_attempts, config.webhook_backoff, config.webhook_timeout) == (5, 0.5, 5.0)


def test_values_from_env() -> None:
    env = {
        "MOCK_CRM_CLIENT_SECRET": "s",
        "MOCK_CRM_WEBHOOK_URL": "",
        "MOCK_CRM_PORT": "9000",
        "MOCK_CRM_RATE_LIMIT": "2.5",
        "MOCK_CRM_FAILURE_RATE": "0.1",
        "MOCK_CRM_LOG_LEVEL": "debug",
        "MOCK_CRM_LOG_FILE": "/tmp/mock.log",
    }
    config = MockConfig.from_env(env)
    assert config.port == 9000 and config.rate_limit == 2.5 and config.rate_burst == 3
    assert config.webhook_url == "" and config.failure_rate == 0.1 and config.log_level == "DEBUG"
    assert MockConfig.from_env({**env, "MOCK_CRM_RATE_BURST": "10"}).rate_burst == 10


def test_secrets_stay_out_of_repr() -> None:
    config = MockConfig(client_secret=CLIENT_SECRET, webhook_url="http://127.0.0.1:1/h", webhook_secret=WEBHOOK_SECRET)
    assert CLIENT_SECRET not in repr(config) and WEBHOOK_SECRET not in repr(config)


def test_unpadded_webhook_secret_is_accepted() -> None:
    MockConfig(client_secret="s", webhook_url="http://127.0.0.1:1/h", webhook_secret=WEBHOOK_SECRET.rstrip("="))


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MOCK_CRM_CLIENT_SECRET": ""}, "MOCK_CRM_CLIENT_SECRET"),
        ({"MOCK_CRM_PORT": "http"}, "MOCK_CRM_PORT"),
        ({"MOCK_CRM_PORT": "70000"}, "MOCK_CRM_PORT"),
        ({"MOCK_CRM_TOKEN_TTL": "0"}, "MOCK_CRM_TOKEN_TTL"),
        ({"MOCK_CRM_TOKEN_TTL": "1.5"}, "MOCK_CRM_TOKEN_TTL"),
        ({"MOCK_CRM_FAILURE_RATE": "2"}, "MOCK_CRM_FAILURE_RATE"),
        ({"MOCK_CRM_LOST_REPLY_RATE": "-1"}, "MOCK_CRM_LOST_REPLY_RATE"),
        ({"MOCK_CRM_RATE_LIMIT": "nan"}, "MOCK_CRM_RATE_LIMIT"),
        ({"MOCK_CRM_RATE_BURST": "0"}, "MOCK_CRM_RATE_BURST"),
        ({"MOCK_CRM_LATENCY_MS": "-5"}, "MOCK_CRM_LATENCY_MS"),
        ({"MOCK_CRM_LOG_LEVEL": "LOUD"}, "MOCK_CRM_LOG_LEVEL"),
        ({"MOCK_CRM_WEBHOOK_URL": "ftp://example.com/x"}, "MOCK_CRM_WEBHOOK_URL"),
        ({"MOCK_CRM_WEBHOOK_URL": "http://[::1"}, "MOCK_CRM_WEBHOOK_URL"),
        ({"MOCK_CRM_WEBHOOK_SECRET": ""}, "MOCK_CRM_WEBHOOK_SECRET"),
        ({"MOCK_CRM_WEBHOOK_SECRET": "whsec_!!!not-base64"}, "MOCK_CRM_WEBHOOK_SECRET"),
        ({"MOCK_CRM_WEBHOOK_SECRET": "c2VjcmV0"}, "MOCK_CRM_WEBHOOK_SECRET"),
    ],
)
def test_bad_env_is_one_clear_sentence(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        MockConfig.from_env({**BASE, **env})
    message = str(info.value)
    assert needle in message and message.endswith(".") and "\n" not in message


def test_main_reports_config_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("MOCK_CRM_"):
            monkeypatch.delenv(name)
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mock-crm: ") and err.count("\n") == 1 and "Traceback" not in err


async def test_command_line_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = unused_port()
    log_file = tmp_path / "mock.log"
    env = {**os.environ, **BASE, "MOCK_CRM_WEBHOOK_URL": "", "MOCK_CRM_LOG_FILE": str(log_file), "MOCK_CRM_PORT": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mock_crm",
        "--port",
        str(port),
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(healthy, timeout=10, interval=0.05)
            async with session.post(f"http://127.0.0.1:{port}/crm/token", data=TOKEN_FORM) as resp:
                token = (await resp.json())["access_token"]
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0
    assert stdout == b""
    lines = [json.loads(line) for line in stderr.decode().splitlines()]
    assert lines == [json.loads(line) for line in log_file.read_text().splitlines()]
    started = next(line for line in lines if line["event"] == "mock_crm_started")
    assert started["port"] == port and started["host"] == "127.0.0.1"
    assert all({"ts", "level", "event"} <= line.keys() for line in lines)
    assert CLIENT_SECRET not in stderr.decode() and token not in stderr.decode()
