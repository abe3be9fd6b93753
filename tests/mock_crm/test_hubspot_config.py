"""HubSpotConfig.from_env and `python -m mock_crm --dialect hubspot`."""

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

from mock_crm.__main__ import load_config
from mock_crm.config import ConfigError, MockConfig
from mock_crm.hubspot.config import HubSpotConfig
from tests.mock_crm.helpers import CLIENT_SECRET, eventually
from tests.mock_crm.hubspot_helpers import APP_SECRET, STATIC_TOKEN

BASE = {"HUBSPOT_FAKE_ACCESS_TOKEN": STATIC_TOKEN, "HUBSPOT_FAKE_APP_SECRET": APP_SECRET}


def test_defaults_from_env() -> None:
    config = HubSpotConfig.from_env(BASE)
    assert config.webhook_url == "http://127.0.0.1:8080/webhook/hubspot"
    assert (config.token_ttl, config.rate_max, config.rate_interval_ms, config.search_rate) == (1800, 190, 10_000, 5)
    assert (config.failure_rate, config.failure_status, config.lost_reply_rate, config.latency_ms) == (0, 502, 0, 0)
    assert config.webhook_batch == 100 and config.client_secret == "" and config.seed is None


def test_values_from_env() -> None:
    env = {**BASE, "HUBSPOT_FAKE_RATE_MAX": "7", "HUBSPOT_FAKE_FAILURE_RATE": "0.25", "HUBSPOT_FAKE_WEBHOOK_URL": "",
           "HUBSPOT_FAKE_LOG_LEVEL": "debug", "HUBSPOT_FAKE_REFRESH_TOKEN": "r", "HUBSPOT_FAKE_SEED": "3"}  # fmt: skip
    config = HubSpotConfig.from_env(env)
    assert (config.rate_max, config.failure_rate, config.webhook_urls) == (7, 0.25, ())
    assert (config.log_level, config.refresh_token, config.seed) == ("DEBUG", "r", 3)
    assert STATIC_TOKEN not in repr(config) and APP_SECRET not in repr(config)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"HUBSPOT_FAKE_ACCESS_TOKEN": ""}, "HUBSPOT_FAKE_ACCESS_TOKEN"),
        ({"HUBSPOT_FAKE_RATE_MAX": "lots"}, "HUBSPOT_FAKE_RATE_MAX"),
        ({"HUBSPOT_FAKE_FAILURE_RATE": "2"}, "HUBSPOT_FAKE_FAILURE_RATE"),
        ({"HUBSPOT_FAKE_APP_SECRET": ""}, "HUBSPOT_FAKE_APP_SECRET"),
        ({"HUBSPOT_FAKE_WEBHOOK_URL": "ftp://x"}, "HUBSPOT_FAKE_WEBHOOK_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        HubSpotConfig.from_env({**BASE, **env})
    assert needle in str(info.value)


def test_dialect_picks_the_config() -> None:
    assert isinstance(load_config(["--dialect", "hubspot", "--port", "9100"], BASE), HubSpotConfig)
    assert load_config(["--dialect", "hubspot", "--port", "9100"], BASE).port == 9100
    assert isinstance(
        load_config([], {"MOCK_CRM_CLIENT_SECRET": CLIENT_SECRET, "MOCK_CRM_WEBHOOK_URL": ""}), MockConfig
    )


async def test_command_line_serves_the_fake_and_stops_on_ctrl_c() -> None:
    port = unused_port()
    env = {**os.environ, **BASE, "HUBSPOT_FAKE_WEBHOOK_URL": ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mock_crm", "--dialect", "hubspot", "--port", str(port), env=env,
        cwd=Path(__file__).parents[2], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(healthy, timeout=10, interval=0.05)
            body = {"properties": {"email": "cli@example.com"}}
            headers = {"Authorization": f"Bearer {STATIC_TOKEN}"}
            async with session.post(f"http://127.0.0.1:{port}/crm/v3/objects/contacts", json=body,
                                    headers=headers) as resp:  # fmt: skip
                assert resp.status == 201
                assert resp.headers["X-HubSpot-RateLimit-Max"] == "190"
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in stderr.decode().splitlines()]
    started = next(line for line in lines if line["event"] == "mock_crm_started")
    assert started["dialect"] == "hubspot" and started["port"] == port
    assert STATIC_TOKEN not in stderr.decode()
