"""Request bodies: one that arrives too slowly is answered 408 and its connection closed; a client that hangs up
mid-body leaves one quiet log line, not a traceback. Served as run_app serves it (no handler cancellation)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from crmsync.app import create_app
from crmsync.config import Config

from .conftest import JOHN, set_faults, sign_up, wait_status
from .fuzz_strategies import tracebacks
from .polling import eventually

BODY = json.dumps({**JOHN, "name": "Slow " + "x" * 150}).encode()


class ProductionServer(TestServer):
    """A TestServer that, like web.run_app, lets a handler run on after its client hangs up."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


ClientFactory = Callable[..., Awaitable[TestClient]]


async def serve(aiohttp_client: ClientFactory, config: Config) -> TestClient:
    """The backend with its workers, served by a ProductionServer."""
    return await aiohttp_client(ProductionServer(create_app(config)))


async def open_request(
    client: TestClient, path: str, headers: dict[str, str], length: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a raw connection and send a POST's head announcing `length` body bytes, and no body yet."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {server.host}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {length}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    return reader, writer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP response with a Content-Length: (status, lower-cased headers, body)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    body = await reader.readexactly(int(fields["content-length"]))
    return int(head[0].split(" ")[1]), fields, body


async def trickle(writer: asyncio.StreamWriter, body: bytes, sent: list[int], interval: float) -> None:
    """Send a body one byte at a time, `interval` seconds apart, counting what went out."""
    for byte in body:
        writer.write(bytes([byte]))
        await writer.drain()
        sent[0] += 1
        await asyncio.sleep(interval)  # the pace of a slow client, not a wait for an outcome


async def test_a_body_sent_byte_by_byte_is_answered_408_and_the_connection_closed(
    aiohttp_client: ClientFactory, make_config: Callable[..., Config]
) -> None:
    client = await serve(aiohttp_client, make_config(body_timeout=0.5))
    auth = await sign_up(client)
    reader, writer = await open_request(client, "/users", auth, len(BODY))
    sent = [0]
    sender = asyncio.create_task(trickle(writer, BODY, sent, interval=0.05))
    started = time.monotonic()
    try:
        status, fields, body = await asyncio.wait_for(read_response(reader), timeout=5)
        elapsed = time.monotonic() - started
        sender.cancel()
        assert status == 408
        assert json.loads(body)["error"] == "request_timeout"
        assert fields["content-type"].startswith("application/json")
        assert fields["connection"] == "close"
        assert 0.4 < elapsed < 3.0, elapsed
        assert sent[0] < len(BODY)  # answered while the body was still arriving
        # The rest of the body lets the server finish reading; then it hangs up rather than keep the connection.
        writer.write(BODY[sent[0] :])
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    finally:
        sender.cancel()
        writer.close()
    # Nothing was stored from the cut-off request.
    resp = await client.get("/users", headers=auth)
    assert (await resp.json())["items"] == []


async def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    aiohttp_client: ClientFactory, make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = await serve(aiohttp_client, make_config())
    auth = await sign_up(client)
    _, writer = await open_request(client, "/users", auth, len(BODY))
    writer.write(BODY[: len(BODY) // 2])
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    def handled() -> bool:
        return any(
            r.getMessage().startswith(("request_body_aborted", "Error handling request")) for r in caplog.records
        )

    await eventually(handled, timeout=5)
    assert tracebacks(caplog.records) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    resp = await client.get("/users", headers=auth)
    assert (await resp.json())["items"] == []


async def test_bodies_that_arrive_in_time_are_read_as_before(
    aiohttp_client: ClientFactory, make_config: Callable[..., Config]
) -> None:
    client = await serve(aiohttp_client, make_config(body_timeout=2.0))
    auth = await sign_up(client)
    resp = await client.post("/users", json=JOHN, headers=auth)
    assert resp.status == 201, await resp.text()

    async def chunks() -> Any:
        for start in range(0, len(BODY), 16):
            yield BODY[start : start + 16]

    other = {**JOHN, "email": "chunked@example.com"}
    resp = await client.post("/users", data=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 409  # the chunked body was read whole and understood: it repeats John's email
    resp = await client.post("/users", data=json.dumps(other).encode(), headers=auth)
    assert resp.status == 201
    await wait_status(client, auth, (await resp.json())["id"], "synced")


async def test_the_timeout_cuts_off_neither_a_websocket_nor_requests_without_a_body(
    aiohttp_client: ClientFactory, make_config: Callable[..., Config], crm: TestServer
) -> None:
    client = await serve(aiohttp_client, make_config(body_timeout=0.2))
    auth = await sign_up(client)
    token = auth["Authorization"].removeprefix("Bearer ")
    async with client.ws_connect(f"/events?token={token}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        # Several body timeouts pass on an open socket without the server closing it.
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.8)
        assert not ws.closed
        resp = await client.post("/users", json=JOHN, headers=auth)
        assert resp.status == 201
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "user"
    # A request without a body is not subject to the timeout, even when it takes longer than it.
    user = await wait_status(client, auth, (await resp.json())["id"], "synced")
    await set_faults(crm, latency_ms=400)
    resp = await client.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 200, await resp.text()
    resp = await client.get("/users", headers=auth)
    assert resp.status == 200
