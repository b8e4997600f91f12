"""At most ws_connections_per_user live connections (WebSocket and SSE together) per user:
the next WebSocket is closed with 1008 and a reason, the next SSE request gets 429."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from server import keys
from server.config import Config
from tests.helpers import User, check_openapi, sign_up
from tests.social.util import app_of

LIMIT = 16  # the default


async def _open(client: TestClient, user: User) -> Any:
    ws = await client.ws_connect("/api/ws", headers=user.headers)
    msg = await ws.receive(timeout=2)
    assert msg.type is WSMsgType.TEXT and json.loads(msg.data)["type"] == "hello", msg
    return ws


async def _refused(client: TestClient, user: User) -> str:
    """The close reason of a WebSocket over the limit (the handshake itself succeeds)."""
    ws = await client.ws_connect("/api/ws", headers=user.headers)
    msg = await ws.receive(timeout=2)
    assert msg.type is WSMsgType.CLOSE, msg
    assert msg.data == WSCloseCode.POLICY_VIOLATION == 1008  # RFC 6455 section 7.4.1
    await ws.close()
    return str(msg.extra)


async def test_live_connections_per_user(client: TestClient, config: Config,
                                         openapi: dict[str, Any]) -> None:
    assert config.ws_connections_per_user == LIMIT
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    sockets = [await _open(client, alice) for _ in range(LIMIT)]
    reason = await _refused(client, alice)
    assert f"at most {LIMIT} live connections" in reason
    resp = await client.get("/api/events", headers=alice.headers)
    assert resp.status == 429
    body = await check_openapi(openapi, resp)
    assert body["type"].endswith("/too-many-live-connections")
    assert f"at most {LIMIT}" in body["detail"]
    # Another user is not affected.
    other = await _open(client, bob)
    # Closing one makes room, and SSE counts in the same pool.
    await sockets.pop().close()
    hub = app_of(client)[keys.LIVE]
    for _ in range(100):
        if hub.per_user.get(alice.id) == LIMIT - 1:
            break
        await asyncio.sleep(0.01)
    stream = await client.get("/api/events", headers=alice.headers)
    assert stream.status == 200
    assert (await stream.content.readline()).startswith(b"retry:")
    await _refused(client, alice)
    stream.close()
    for ws in [*sockets, other]:
        await ws.close()
    for _ in range(200):
        if not hub.per_user:
            break
        await asyncio.sleep(0.01)
    assert hub.per_user == {}  # every count released, refusals included
    assert (await _open(client, alice)) is not None
