"""CRMSYNC_CRM picks the CRM adapter: mock by default; hubspot needs its own settings, and says which when missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.config import Config, ConfigError
from crmsync.crm.select import check_crm

from .app_process import crmsync_env


def _config(**settings: str) -> Config:
    return Config.from_env(crmsync_env(**settings))


def test_the_mock_is_the_default_and_the_choice_ignores_case() -> None:
    assert _config().crm == "mock"
    assert _config(CRMSYNC_CRM="Mock").crm == "mock"
    check_crm(_config())  # the mock adapter exists


def test_an_unknown_crm_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="CRMSYNC_CRM must be one of MOCK, HUBSPOT"):
        _config(CRMSYNC_CRM="salesforce")


def test_hubspot_with_a_token_needs_none_of_the_mocks_secrets() -> None:
    config = _config(CRMSYNC_CRM="hubspot", CRMSYNC_HUBSPOT_TOKEN="pat-na1-secret-token", CRMSYNC_CRM_CLIENT_SECRET="",
                     CRMSYNC_WEBHOOK_SECRET="")  # fmt: skip
    assert config.crm == "hubspot" and config.hubspot is not None
    check_crm(config)


def test_hubspot_without_its_settings_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = crmsync_env(CRMSYNC_CRM="hubspot", CRMSYNC_PORT="0", CRMSYNC_HUBSPOT_CLIENT_ID="app")
    result = subprocess.run(
        [sys.executable, "-m", "crmsync"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "crmsync: CRMSYNC_CRM=hubspot needs CRMSYNC_HUBSPOT_TOKEN (a private app token) or all of "
        "CRMSYNC_HUBSPOT_CLIENT_ID, CRMSYNC_HUBSPOT_CLIENT_SECRET and CRMSYNC_HUBSPOT_REFRESH_TOKEN"
    ]
