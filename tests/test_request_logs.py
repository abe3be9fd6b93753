"""Logs a person can follow: a line per request, sign-ups and sign-ins, contact changes; both apps alike."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from crmsync.logs import JsonFormatter
from mock_crm.logs import JsonFormatter as MockJsonFormatter

from .conftest import JOHN, PASSWORD
from .log_capture import captured_logs


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every record from every logger at INFO and above, as crmsync writes it (without its scrubbing)."""
    with captured_logs(logging.INFO) as stream:
        yield stream


def events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    """crmsync's lines of one event (the mock CRM, in the same process, logs to the same root)."""
    lines = map(json.loads, stream.getvalue().splitlines())
    return [line for line in lines if line["event"] == name and line["logger"].startswith("crmsync.")]


async def test_each_request_and_each_account_and_contact_change_is_logged(
    log_lines: io.StringIO, backend: TestClient
) -> None:
    credentials = {"email": "ada@example.com", "password": PASSWORD}
    resp = await backend.post("/accounts", json={**credentials, "password_confirmation": PASSWORD})
    account = await resp.json()
    auth = {"Authorization": f"Bearer {account['auth_token']}"}
    await backend.post("/authenticate", json={**credentials, "password": "not the password"})
    await backend.post("/authenticate", json={"email": "nobody@example.com", "password": "whatever123"})
    assert (await backend.post("/authenticate", json=credentials)).status == 200
    user = await (await backend.post("/users", json=JOHN, headers=auth)).json()
    await backend.patch(f"/users/{user['id']}", json={"phone": "555-123-4567"}, headers=auth)
    batch = await (await backend.post("/users/batch", json=[{**JOHN, "email": "b@example.com"}], headers=auth)).json()
    await backend.get("/users?q=john", headers=auth)
    await backend.get("/users")  # no token
    await backend.delete(f"/users/{user['id']}", headers=auth)

    requests = [(r["method"], r["path"], r["status"], r["account_id"]) for r in events(log_lines, "request")]
    me = account["id"]
    assert requests[:8] == [
        ("POST", "/accounts", 201, None), ("POST", "/authenticate", 401, None), ("POST", "/authenticate", 401, None),
        ("POST", "/authenticate", 200, None), ("POST", "/users", 201, me), ("PATCH", f"/users/{user['id']}", 200, me),
        ("POST", "/users/batch", 207, me), ("GET", "/users", 200, me),
    ]  # fmt: skip
    assert requests[8] == ("GET", "/users", 401, None) and requests[9][:2] == ("DELETE", f"/users/{user['id']}")
    assert all(isinstance(r["ms"], float) and r["level"] == "INFO" for r in events(log_lines, "request"))

    assert [e["account_id"] for e in events(log_lines, "account_created")] == [me]
    assert [e["account_id"] for e in events(log_lines, "signed_in")] == [me]
    failed = events(log_lines, "sign_in_failed")
    assert [(e["account_id"], e["reason"]) for e in failed] == [
        (me, "wrong password"), (None, "no account with this email"),
    ]  # fmt: skip
    # A create's own request line names the contact it made (one line on the hot path); a batch's, each.
    [create] = [r for r in events(log_lines, "request") if (r["method"], r["path"]) == ("POST", "/users")]
    assert create["user_id"] == user["id"]
    assert [e["user_id"] for e in events(log_lines, "user_created")] == [batch["items"][0]["id"]]
    assert [(e["user_id"], e["fields"]) for e in events(log_lines, "user_updated")] == [(user["id"], ["phone"])]
    assert [e["user_id"] for e in events(log_lines, "user_delete_requested")] == [user["id"]]
    # aiohttp's own access log is silenced by setup_logging outside tests.
    text = "\n".join(line for line in log_lines.getvalue().splitlines() if '"logger": "aiohttp.access"' not in line)
    for never in (PASSWORD, "not the password", "whatever123", account["auth_token"], "555-123-4567", "q=john"):
        assert never not in text  # no password, token, body or query string


def test_both_apps_write_the_same_shape() -> None:
    def record(level: int, exc: bool) -> logging.LogRecord:
        info = None
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                info = sys.exc_info()
        made = logging.LogRecord("some.logger", level, __file__, 1, "something_happened", None, info)
        made.user_id = "u1"
        return made

    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        for exc in (False, True):
            ours = json.loads(JsonFormatter().format(record(level, exc)))
            theirs = json.loads(MockJsonFormatter().format(record(level, exc)))
            assert ours.keys() == theirs.keys() and ours["level"] == theirs["level"] == logging.getLevelName(level)
            assert ours["ts"][-1] == theirs["ts"][-1] == "Z" and len(ours["ts"]) == len(theirs["ts"])
