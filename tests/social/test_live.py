"""Live delivery with real clients: aiohttp's WebSocket client and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

from aiohttp import WSMsgType
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server import events, keys
from server.app import create_app
from server.config import Config
from tests.conftest import make_config
from tests.helpers import User, sign_up
from tests.social.util import app_of, make_ready, new_video, subscribe


async def next_of(ws: Any, kind: str, timeout: float = 2.0) -> dict[str, Any]:
    """The next message of one type, skipping others (hello, replies, status events)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert msg.type is WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] == kind:
            return data  # type: ignore[no-any-return]


async def connect(client: TestClient, user: User, **params: Any) -> Any:
    ws = await client.ws_connect("/api/ws", headers=user.headers, params=params)
    hello = await next_of(ws, "hello")
    assert hello["user_id"] == user.id
    return ws


async def test_new_video_reaches_subscriber_within_a_second(client: TestClient) -> None:
    alice, bob, carol = [await sign_up(client, n) for n in ("alice", "bob", "carol")]
    await subscribe(client, bob, alice.channel_id)
    await subscribe(client, carol, alice.channel_id, notify="none")
    bob_ws = await connect(client, bob, last_id=0)
    carol_ws = await connect(client, carol, last_id=0)
    await carol_ws.send_json({"type": "ping"})
    await next_of(carol_ws, "pong")
    video = await new_video(client, alice, "fresh")
    started = time.monotonic()
    await make_ready(client, alice, video)
    message = await next_of(bob_ws, "notification", timeout=1.0)
    assert time.monotonic() - started < 1.0
    note = message["notification"]
    assert note["kind"] == "new_video" and note["data"]["video"]["id"] == video
    assert message["topic"] == f"user:{bob.id}"
    # notify=none: nothing arrives (a ping answered after the event proves the order).
    await carol_ws.send_json({"type": "ping"})
    reply = await carol_ws.receive_json(timeout=2)
    assert reply["type"] == "pong", reply
    # A second "ready" (another rendition finishing) announces nothing new.
    await make_ready(client, alice, video)
    await bob_ws.send_json({"type": "ping"})
    assert (await bob_ws.receive_json(timeout=2))["type"] == "pong"
    await bob_ws.close()
    await carol_ws.close()


async def test_offline_user_gets_inbox_and_resumes_in_order(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    await subscribe(client, bob, alice.channel_id)
    ws = await connect(client, bob, last_id=0)
    first = await new_video(client, alice, "first")
    await make_ready(client, alice, first)
    seen = (await next_of(ws, "notification"))["notification"]["id"]
    await ws.close()
    missed = []
    for i in range(3):
        video = await new_video(client, alice, f"missed {i}")
        await make_ready(client, alice, video)
        missed.append(video)
    resp = await client.get("/api/notifications", headers=bob.headers)
    inbox = await resp.json()
    assert inbox["unread_count"] == 4
    assert [n["data"]["video"]["id"] for n in inbox["items"]] == [*reversed(missed), first]
    # Reconnect by message (not query) with the last id seen: the missed ones, in order.
    ws = await client.ws_connect("/api/ws", headers=bob.headers)
    await ws.send_json({"type": "resume", "last_id": seen})
    got = [(await next_of(ws, "notification"))["notification"] for _ in missed]
    assert [n["data"]["video"]["id"] for n in got] == missed
    assert [n["id"] for n in got] == sorted(n["id"] for n in got)
    resumed = await next_of(ws, "resumed")
    assert resumed["count"] == 3
    # Then live events keep coming on the same socket.
    live = await new_video(client, alice, "live")
    await make_ready(client, alice, live)
    assert (await next_of(ws, "notification"))["notification"]["data"]["video"]["id"] == live
    await ws.close()


async def test_owner_hears_processing_and_follows_progress(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    video = await new_video(client, alice, "mine", privacy="private")
    ws = await connect(client, alice, last_id=0)
    await ws.send_json({"type": "subscribe", "topic": f"video:{video}"})
    assert (await next_of(ws, "subscribed"))["topic"] == f"video:{video}"
    events.video_progress(app_of(client)[keys.SERVICES], video, {"percent": 42.0})
    progress = await next_of(ws, "video.progress")
    assert progress["percent"] == 42.0 and progress["topic"] == f"video:{video}"
    await make_ready(client, alice, video)
    note = (await next_of(ws, "notification"))["notification"]
    assert note["kind"] == "video_processed" and note["data"]["video"]["id"] == video
    failing = await new_video(client, alice, "broken")
    await make_ready(client, alice, failing, status="failed", error="not a video")
    note = (await next_of(ws, "notification"))["notification"]
    assert note["kind"] == "video_failed" and note["data"]["error"] == "not a video"
    await ws.close()


async def test_topic_permissions_and_bad_messages(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    private = await new_video(client, alice, "secret", privacy="private")
    ws = await connect(client, bob)
    for message in ({"type": "subscribe", "topic": f"video:{private}"},
                    {"type": "subscribe", "topic": f"user:{alice.id}"},
                    {"type": "resume", "last_id": -3}, {"type": "dance"}):
        await ws.send_json(message)
        error = await next_of(ws, "error")
        assert error["detail"]
    await ws.send_str("{not json")
    assert "JSON" in (await next_of(ws, "error"))["detail"]
    events.video_progress(app_of(client)[keys.SERVICES], private, {"percent": 1.0})
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=2))["type"] == "pong"
    await ws.close()


async def test_websocket_authentication(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.get("/api/ws")
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    resp = await client.get("/api/ws", params={"token": "forged"})
    assert resp.status == 401
    ws = await client.ws_connect("/api/ws", params={"token": alice.tokens["access_token"]})
    assert (await next_of(ws, "hello"))["user_id"] == alice.id
    await ws.close()
    resp = await client.post("/api/users/me/tokens", headers=alice.headers,
                             json={"name": "script", "scopes": ["read"]})
    api_token = (await resp.json())["token"]
    ws = await client.ws_connect(f"/api/ws?token={api_token}")
    assert (await next_of(ws, "hello"))["user_id"] == alice.id
    await ws.close()
    resp = await client.get("/api/ws", headers=alice.headers)  # not an upgrade
    assert resp.status == 400


def _raw_websocket(port: int, token: str) -> socket.socket:
    """A client that completes the handshake and then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall((f"GET /api/ws?last_id=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _read_until_closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while sock.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


async def test_slow_consumer_is_dropped_fast_one_keeps_receiving(
    aiohttp_client: AiohttpClient, config: Config
) -> None:
    config = make_config(config.data_dir, ws_queue_size=16)
    client = await aiohttp_client(create_app(config))
    alice = await sign_up(client, "alice")
    video = await new_video(client, alice, "busy")
    app = app_of(client)
    fast = await connect(client, alice, last_id=0)
    await fast.send_json({"type": "subscribe", "topic": f"video:{video}"})
    await next_of(fast, "subscribed")
    assert client.port is not None
    slow = await asyncio.to_thread(_raw_websocket, client.port, alice.tokens["access_token"])
    try:
        topic = events.user_topic(alice.id)
        while app[keys.BUS].subscriber_count(topic) < 2:
            await asyncio.sleep(0.01)
        slow_sub = next(s for s in app[keys.BUS]._by_topic[topic]
                        if events.video_topic(video) not in s.topics)
        # The raw client cannot send a subscribe message without a framing library, so
        # its server-side subscription joins the topic the way that message would.
        slow_sub.add_topics([events.video_topic(video)])
        padding = "x" * 8000
        received = 0
        sent = 0
        while slow_sub.dropped is None and sent < 5000:
            events.video_progress(app[keys.SERVICES], video, {"n": sent, "log": padding})
            sent += 1
            if sent % 8 == 0:
                while received < sent:  # the fast client reads everything at once
                    message = await next_of(fast, "video.progress")
                    assert message["n"] == received
                    received += 1
        assert slow_sub.dropped is not None and "too slow" in slow_sub.dropped
        while received < sent:
            assert (await next_of(fast, "video.progress"))["n"] == received
            received += 1
        for n in range(sent, sent + 10):
            events.video_progress(app[keys.SERVICES], video, {"n": n})
        while received < sent + 10:
            assert (await next_of(fast, "video.progress"))["n"] == received
            received += 1
        deadline = time.monotonic() + 5
        while app[keys.METRICS].live_connections._value.get() > 1:
            conn: Any = slow_sub.listener
            assert time.monotonic() < deadline, ("the slow socket was never closed",
                                                 conn.closer, conn.ws.closed,
                                                 conn.ws.close_code,
                                                 conn.transport.is_closing())
            await asyncio.sleep(0.05)
        assert app[keys.BUS].subscriber_count(events.video_topic(video)) == 1
        # The slow client, reading at last, finds its connection ended by the server.
        assert await asyncio.to_thread(_read_until_closed, slow)
    finally:
        slow.close()
        await fast.close()


async def test_sse_resumes_with_last_event_id(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    await subscribe(client, bob, alice.channel_id)
    ids = []
    for i in range(2):
        video = await new_video(client, alice, f"v{i}")
        await make_ready(client, alice, video)
        ids.append(video)
    resp = await client.get("/api/notifications", headers=bob.headers)
    first_id, second_id = sorted(n["id"] for n in (await resp.json())["items"])
    resp = await client.get("/api/events", headers={**bob.headers, "Last-Event-ID":
                                                    str(first_id)})
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    reader = SseReader(resp)
    event = await reader.next_event()
    assert event["id"] == str(second_id)
    assert json.loads(event["data"])["notification"]["data"]["video"]["id"] == ids[1]
    live = await new_video(client, alice, "live")
    await make_ready(client, alice, live)
    event = await reader.next_event()
    assert json.loads(event["data"])["notification"]["data"]["video"]["id"] == live
    assert int(event["id"]) > second_id
    resp.close()
    resp = await client.get("/api/events", headers={"Last-Event-ID": "x", **bob.headers})
    assert resp.status == 400


class SseReader:
    """A minimal reader of the text/event-stream format (WHATWG HTML section 9.2.6)."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next_event(self, timeout: float = 2.0) -> dict[str, str]:
        fields: dict[str, str] = {}
        while True:
            line = (await asyncio.wait_for(self.resp.content.readline(), timeout)).decode()
            line = line.rstrip("\n")
            if not line:
                if "data" in fields:
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def test_shutdown_closes_sockets_with_1001(aiohttp_client: AiohttpClient,
                                                 config: Config) -> None:
    app = create_app(config)
    client = await aiohttp_client(app)
    alice = await sign_up(client, "alice")
    ws = await connect(client, alice)
    assert app[keys.METRICS].live_connections._value.get() == 1
    await app.shutdown()
    msg = await ws.receive(timeout=2)
    assert msg.type is WSMsgType.CLOSE and msg.data == 1001
    await ws.close()


async def test_channel_topic_and_test_hook(aiohttp_client: AiohttpClient,
                                           config: Config) -> None:
    off = await aiohttp_client(create_app(config))
    admin = await sign_up(off, "admin")
    resp = await off.post("/api/admin/test-hooks/publish", headers=admin.headers)
    assert resp.status == 404  # off by default
    client = await aiohttp_client(create_app(make_config(config.data_dir, test_hooks=True)))
    resp = await client.post("/api/auth/login", json={"username": "admin",
                                                      "password": "correct horse battery"})
    admin.tokens = await resp.json()
    viewer = await sign_up(client, "viewer")
    resp = await client.post("/api/admin/test-hooks/publish", headers=viewer.headers)
    assert resp.status == 403
    ws = await connect(client, viewer)
    await ws.send_json({"type": "subscribe", "topic": f"channel:{admin.channel_id}"})
    await next_of(ws, "subscribed")
    resp = await client.post("/api/admin/test-hooks/publish", headers=admin.headers,
                             json={"title": "bench"})
    assert resp.status == 201, await resp.text()
    published = await resp.json()
    event = await next_of(ws, "video.published", timeout=1.0)
    assert event["video"] == {"id": published["video_id"], "title": "bench"}
    assert event["topic"] == f"channel:{admin.channel_id}"
    await ws.close()


async def test_cookie_sockets_refuse_foreign_origins(client: TestClient) -> None:
    await sign_up(client, "alice")
    resp = await client.post("/api/auth/login", json={"username": "alice",
                                                      "password": "correct horse battery"})
    assert resp.status == 200  # the jar now holds the session cookie
    resp = await client.get("/api/ws", headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    assert (await resp.json())["type"].endswith("/origin")
    own = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect("/api/ws", headers={"Origin": own})
    assert (await next_of(ws, "hello"))["type"] == "hello"
    await ws.close()
    client.session.cookie_jar.clear()


async def test_comment_events_and_read_badges(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    video = await new_video(client, alice, status="ready")
    watcher = await connect(client, bob, last_id=0)
    await watcher.send_json({"type": "subscribe", "topic": f"video:{video}"})
    await next_of(watcher, "subscribed")
    owner = await connect(client, alice, last_id=0)
    resp = await client.post(f"/api/videos/{video}/comments", json={"body": "first!"},
                             headers=bob.headers)
    assert resp.status == 201
    event = await next_of(watcher, "comment.created")
    assert event["comment"]["body"] == "first!"
    assert event["comment"]["author"]["username"] == "bob"
    assert "can_edit" not in event["comment"]
    note = (await next_of(owner, "notification"))["notification"]
    assert note["kind"] == "comment" and note["data"]["actor"] == "bob"
    resp = await client.post("/api/notifications/read-all", headers=alice.headers)
    assert resp.status == 200
    assert (await next_of(owner, "notifications.read"))["unread_count"] == 0
    await watcher.close()
    await owner.close()


async def test_sse_topics_errors_and_shutdown(aiohttp_client: AiohttpClient,
                                              config: Config) -> None:
    app = create_app(config)
    client = await aiohttp_client(app)
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    private = await new_video(client, alice, privacy="private")
    resp = await client.get("/api/events", params={"topic": f"video:{private}"},
                            headers=bob.headers)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    resp = await client.get("/api/events")
    assert resp.status == 401
    resp = await client.get("/api/events", params={"token": alice.tokens["access_token"],
                                                   "topic": f"video:{private}"})
    assert resp.status == 200
    reader = SseReader(resp)
    events.video_progress(app[keys.SERVICES], private, {"percent": 50.0})
    event = await reader.next_event()
    assert "id" not in event  # only notifications carry ids (resume points)
    assert json.loads(event["data"])["percent"] == 50.0
    await app.shutdown()
    rest = await asyncio.wait_for(resp.content.read(), 2)  # the stream ends
    assert b"server shutting down" in rest
    resp.close()


async def test_a_video_made_private_ends_its_followers(client: TestClient) -> None:
    """Subscriptions are checked again when access narrows: a viewer following a public
    video over WebSocket or SSE gets one last event when it turns private, and nothing
    after; its owner keeps following it."""
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    video = await new_video(client, alice, "soon private")
    topic = f"video:{video}"
    watcher, owner = await connect(client, bob), await connect(client, alice)
    for ws in (watcher, owner):
        await ws.send_json({"type": "subscribe", "topic": topic})
        assert (await next_of(ws, "subscribed"))["topic"] == topic
    stream = await client.get("/api/events", params={"topic": topic}, headers=bob.headers)
    reader = SseReader(stream)
    services = app_of(client)[keys.SERVICES]
    events.video_progress(services, video, {"percent": 1.0})
    assert json.loads((await reader.next_event())["data"])["percent"] == 1.0
    assert (await next_of(watcher, "video.progress"))["percent"] == 1.0
    assert (await next_of(owner, "video.progress"))["percent"] == 1.0

    resp = await client.patch(f"/api/videos/{video}", json={"privacy": "private"},
                              headers=alice.headers)
    assert resp.status == 200
    ended = await next_of(watcher, "subscription.ended")
    assert ended["topic"] == topic and "private" in ended["reason"]
    assert json.loads((await reader.next_event())["data"])["type"] == "subscription.ended"
    events.video_progress(services, video, {"percent": 2.0})
    assert (await next_of(owner, "video.progress"))["percent"] == 2.0  # the owner still sees
    await watcher.send_json({"type": "ping"})
    assert (await watcher.receive_json(timeout=2))["type"] == "pong"  # nothing came between
    assert app_of(client)[keys.BUS].subscriber_count(topic) == 1
    stream.close()
    await watcher.close()
    await owner.close()


async def test_a_disabled_account_loses_its_live_connections(client: TestClient) -> None:
    admin = await sign_up(client, "root")  # the first account is the administrator
    bob = await sign_up(client, "bob")
    ws = await connect(client, bob)
    resp = await client.patch(f"/api/admin/users/{bob.id}", json={"disabled": True},
                              headers=admin.headers)
    assert resp.status == 200
    closing = await ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert "disabled" in (closing.extra or "") or ws.closed


async def test_resume_ids_past_64_bits_are_refused(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    huge = str(1 << 64)
    resp = await client.get("/api/events", params={"last_id": huge}, headers=alice.headers)
    assert resp.status == 400 and resp.content_type == "application/problem+json"
    ws = await connect(client, alice)
    await ws.send_json({"type": "resume", "last_id": huge})
    assert "2^63-1" in (await next_of(ws, "error"))["detail"]
    await ws.close()
