"""Hostile input on every write route never produces a 5xx (or a traceback)."""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.mock_crm.helpers import ALICE

ODD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    1e308,
    float("inf"),
    "",
    " ",
    "x" * 5000,
    "\x00",
    "\ud800",
    "\u202e\u200d",
    "🙂" * 300,
    "a@b.c",
    "2026-13-45T99:99:99Z",
    "0001-01-01T00:00:00+01:00",
    [],
    {},
    [[[]]],
    {"a": {"b": [None]}},
    ["CRM0"],
    "Ünïcødé ‮",
    "9" * 400,
]
FIELDS = [
    "name",
    "email",
    "phone",
    "title",
    "starts_at",
    "ends_at",
    "crm_ids",
    "items",
    "idempotency_key",
    "rate_limit",
    "rate_burst",
    "failure_rate",
    "lost_reply_rate",
    "latency_ms",
    "__proto__",
    "",
]


def _bodies(seed: int, count: int) -> list[Any]:
    """Objects mixing real and odd keys with odd values, plus a few non-objects."""
    rng = random.Random(seed)
    bodies: list[Any] = [rng.choice(ODD) for _ in range(5)]
    for _ in range(count):
        keys = rng.sample(FIELDS, rng.randint(0, 4))
        bodies.append({key: rng.choice(ODD) for key in keys})
    bodies.append({"items": [{key: rng.choice(ODD) for key in rng.sample(FIELDS, 3)} for _ in range(5)]})
    return bodies


async def test_write_routes_survive_garbage(
    mock: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    user = await (await mock.post("/crm/users", json=ALICE, headers=headers)).json()
    meeting = await (
        await mock.post("/crm/meetings", json={"title": "M", "starts_at": "2026-12-01T10:00:00Z"}, headers=headers)
    ).json()
    routes = [
        ("POST", "/crm/users"),
        ("PATCH", f"/crm/users/{user['crm_id']}"),
        ("POST", "/crm/users/batch"),
        ("POST", "/crm/meetings"),
        ("PATCH", f"/crm/meetings/{meeting['meeting_id']}"),
        ("PUT", f"/crm/meetings/{meeting['meeting_id']}/contacts"),
        ("POST", f"/crm/_admin/users/{user['crm_id']}/edit"),
        ("PUT", "/crm/_admin/faults"),
        ("POST", "/crm/token"),
    ]
    for (method, path), body in itertools.product(routes, _bodies(seed=11, count=25)):
        data = json.dumps(body).encode()
        send = {**headers, "Content-Type": "application/json", "Idempotency-Key": "fuzz"}
        resp = await mock.request(method, path, data=data, headers=send)
        assert resp.status < 500, (method, path, body, await resp.text())
        if resp.status >= 400:
            error = await resp.json()
            assert isinstance(error["error"], str) and isinstance(error["message"], str)
    assert not caplog.records


@pytest.mark.parametrize(
    "path",
    [
        "/crm/users/%FF%FE",
        "/crm/users/" + "x" * 2000,
        "/crm/meetings/%00",
        "/crm/users?limit=%F0%9F%99%82",
        "/crm/users?updated_since=%00",
        "/crm/users?cursor=" + "A" * 3000,
    ],
)
async def test_odd_urls_are_4xx(mock: TestClient, headers: dict[str, str], path: str) -> None:
    resp = await mock.get(path, headers=headers)
    assert 400 <= resp.status < 500
    assert (await resp.json())["error"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[1,2]", b"null", b'"text"', b"\xff\xfe\x00", b"[" * 100_000, b"1e999999", b"9" * 5000],
)
async def test_hostile_bodies_are_4xx(mock: TestClient, headers: dict[str, str], raw: bytes) -> None:
    resp = await mock.post("/crm/users", data=raw, headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] in ("invalid_json", "invalid_data")
    assert body["message"]


async def test_huge_body_is_413_json(mock: TestClient, headers: dict[str, str]) -> None:
    body = io.BytesIO(json.dumps({**ALICE, "name": "x" * 2_000_000}).encode())
    resp = await mock.post("/crm/users", data=body, headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["error"] == "payload_too_large"


async def test_unknown_route_and_method_are_json(mock: TestClient, headers: dict[str, str]) -> None:
    resp = await mock.get("/crm/nothing", headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"
    resp = await mock.put("/crm/users", headers=headers)
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]
