"""JSON log lines, and that no secret or token is ever logged."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.test_utils import TestClient

from mock_crm.logs import JsonFormatter
from tests.mock_crm.helpers import CLIENT_SECRET, TOKEN_FORM


def test_json_formatter_shape() -> None:
    record = logging.LogRecord("mock_crm.x", logging.WARNING, __file__, 1, "webhook_retry", None, None)
    record.event_id = "evt_1"
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "webhook_retry" and line["level"] == "WARNING" and line["event_id"] == "evt_1"
    assert line["ts"].endswith("Z")


async def test_no_secret_or_token_is_logged(mock: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await mock.post("/crm/token", data=TOKEN_FORM)
    token = (await resp.json())["access_token"]
    await mock.get("/crm/users", headers={"Authorization": f"Bearer {token}"})
    await mock.post("/crm/token", data={**TOKEN_FORM, "client_secret": "wrong-guess"})
    text = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "token_issued" in text
    for secret in (CLIENT_SECRET, token, "wrong-guess"):
        assert secret not in text
