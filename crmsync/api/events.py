"""GET /events: a WebSocket of live status, authenticated by ?token= or by the first message."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from ..auth import account_for_token, public
from ..errors import ServiceError
from ..events import Subscription
from ..keys import events_key, sockets_key

logger = logging.getLogger(__name__)

HEARTBEAT = 20.0  # seconds between pings; a client that stops answering is closed
AUTH_WAIT = 10.0  # seconds a client has to send {"token": ...} when it gave none in the URL
UNAUTHORIZED = 4401


@public
async def events(request: web.Request) -> web.WebSocketResponse:
    """Stream user, meeting and webhook events to one authenticated client."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT)
    await ws.prepare(request)
    account_id = await _authenticate(request, ws)
    if account_id is None:
        await ws.close(code=UNAUTHORIZED, message=b"unauthorized")
        return ws
    bus = request.app[events_key]
    subscription = bus.subscribe(account_id)
    request.app[sockets_key].add(ws)
    sender = asyncio.create_task(_send(ws, subscription))
    try:
        await bus.announce()  # before hello: what the client reads after hello reaches it from every replica
        await ws.send_str(orjson.dumps({"type": "hello", "account_id": account_id}).decode())
        async for message in ws:  # clients only listen; reading keeps pings and closes flowing
            if message.type == WSMsgType.ERROR:
                break
    finally:
        bus.unsubscribe(subscription)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws


async def _authenticate(request: web.Request, ws: web.WebSocketResponse) -> str | None:
    token = request.query.get("token")
    if token is None:
        try:
            first = await ws.receive_json(timeout=AUTH_WAIT)
        except (TimeoutError, ValueError, TypeError):
            return None
        token = first.get("token") if isinstance(first, dict) else None
    if not isinstance(token, str):
        return None
    try:
        return await account_for_token(request.app, f"Bearer {token}")
    except ServiceError:
        return None


async def _send(ws: web.WebSocketResponse, subscription: Subscription) -> None:
    while not ws.closed:
        event = await subscription.queue.get()
        await ws.send_str(orjson.dumps(event).decode())
        if event["type"] == "reload":
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"reload")


async def close_sockets(app: web.Application) -> None:
    """On shutdown, say goodbye to every open socket so the server can stop."""
    for ws in list(app[sockets_key]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
