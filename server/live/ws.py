"""`GET /api/ws`: notifications and live events over one WebSocket (RFC 6455).

Client messages (JSON text):
  {"type": "resume", "last_id": N}         stored notifications with id > N, in order
  {"type": "subscribe", "topic": "video:<id>"}   also "channel:<id>"
  {"type": "unsubscribe", "topic": ...}, {"type": "ping"}
Server messages: {"type": "hello"}, {"type": "notification", "notification": {...}},
bus events ({"type": "video.progress" | "video.status" | "video.published" | ...}),
replies ("resumed", "subscribed", "unsubscribed", "pong") and {"type": "error"}.

Per connection the server keeps one Subscription (and a writer task only while the
socket is backed up); each event is serialised and framed once (server.bus.Message), so
a fan-out does no per-socket JSON or framing work. A subscriber that falls behind is
dropped by the bus and closed with 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from server import events, keys
from server.bus import CLOSED, Message, Subscription
from server.errors import BadRequest, Problem
from server.live.connect import (
    MAX_TOPICS,
    authenticate,
    backlog,
    check_topic,
    parse_last_id,
    too_many,
)
from server.social import notifications
from server.viewer import Viewer

log = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE = 4096
# Without ?last_id= live events wait this long for a first "resume" message, so a
# client resuming by message still gets its backlog before anything newer.
RESUME_GRACE_SECONDS = 0.5
CLOSE_TIMEOUT_SECONDS = 2.0
# Past this many bytes waiting in the socket's buffer, events queue (bounded) instead.
HIGH_WATER = 64 * 1024


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented text frame (RFC 6455 section 5.2; servers never mask),
    so the same bytes serve every subscriber of a message."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


class Connection:
    """Fast path: while nothing waits in its queue, the bus hands each message to `offer`,
    which writes the message's shared frame straight to the socket (no task switch per
    subscriber). When the socket's buffer is full, messages queue instead and a writer
    task, made only then, sends them with aiohttp's flow control; a subscriber whose
    queue overflows is dropped by the bus and closed with 1013 (try again later)."""

    __slots__ = ("app", "closer", "grace", "holding", "sent_up_to", "sub", "transport",
                 "viewer", "writer", "ws")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, viewer: Viewer) -> None:
        app = self.app = request.app
        self.transport = request.transport
        self.ws = ws
        self.viewer = viewer
        self.sent_up_to = 0
        self.holding = True  # until the client's resume (or the grace period) is over
        self.grace: asyncio.TimerHandle | None = None
        self.closer: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.sub: Subscription = app[keys.BUS].subscribe(
            [events.user_topic(viewer.user_id)], user_id=viewer.user_id,
            is_admin=viewer.is_admin)
        self.sub.listener = self

    async def run(self, last_id: int | None) -> None:
        unread = await notifications.unread_count(self.app[keys.DB], self.viewer.user_id)
        await self._send({"type": "hello", "user_id": self.viewer.user_id,
                          "unread_count": unread})
        if last_id is not None:
            await self._resume(last_id)
            self._release()
        else:
            loop = asyncio.get_running_loop()
            self.grace = loop.call_later(RESUME_GRACE_SECONDS, self._release)
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    await self._handle(msg.data)
                else:
                    await self._send({"type": "error", "detail": "send JSON text messages"})
                del msg  # not kept alive (with its text) until the next message arrives
        finally:
            self.sub.close()
            if self.grace is not None:
                self.grace.cancel()
            if self.writer is not None:
                self.writer.cancel()

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError):
            await self.ws.send_str(json.dumps(message, separators=(",", ":")))

    def _release(self) -> None:
        if self.grace is not None:
            self.grace.cancel()
            self.grace = None
        if self.holding:
            self.holding = False
            self.queued()

    def _seen(self, message: Message) -> bool:
        """A notification already sent from the stored backlog."""
        return message.get("type") == "notification" and \
            message["notification"]["id"] <= self.sent_up_to

    def offer(self, message: Message) -> bool:
        transport = self.transport
        if (self.holding or self.writer is not None or self.ws.closed or transport is None
                or transport.is_closing() or transport.get_write_buffer_size() > HIGH_WATER):
            return False
        if not self._seen(message):
            transport.write(message.encoded(text_frame))
        return True

    def queued(self) -> None:
        if self.writer is None and not self.holding and not self.sub.queue.empty():
            self.writer = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        queue = self.sub.queue
        try:
            while not queue.empty():
                message = queue.get_nowait()
                if message is CLOSED:
                    return
                if not self._seen(message):
                    await self.ws.send_str(message.text)  # waits while the socket is full
        except ConnectionError:
            pass
        finally:
            self.writer = None

    async def _resume(self, last_id: int) -> None:
        count = 0
        async for notification_id, text in backlog(self.app, self.viewer.user_id, last_id):
            if notification_id > self.sent_up_to:
                await self.ws.send_str(text)
                self.sent_up_to = notification_id
                count += 1
        await self._send({"type": "resumed", "last_id": last_id, "count": count})

    async def _handle(self, data: str) -> None:
        try:
            message = json.loads(data)
            if not isinstance(message, dict):
                raise BadRequest("a message must be a JSON object")
            await self._dispatch(message)
        except json.JSONDecodeError:
            await self._send({"type": "error", "detail": "the message is not valid JSON"})
        except Problem as problem:
            await self._send({"type": "error", "status": problem.status,
                              "detail": problem.detail})
        finally:
            self._release()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "resume":
            last_id = parse_last_id(message.get("last_id"))
            await self._resume(last_id or 0)
        elif kind in ("subscribe", "unsubscribe"):
            topic = message.get("topic")
            if not isinstance(topic, str):
                raise BadRequest("'topic' must be a string such as 'video:<id>'")
            if kind == "unsubscribe":
                self.sub.remove_topics([topic])
            elif len(self.sub.topics) >= MAX_TOPICS:
                raise BadRequest(f"at most {MAX_TOPICS} topics per connection")
            else:
                topic = await check_topic(self.app, self.viewer, topic)
                self.sub.add_topics([topic])
            await self._send({"type": kind + "d", "topic": topic})
        elif kind == "ping":
            await self._send({"type": "pong"})
        else:
            raise BadRequest("unknown message type; expected resume, subscribe, "
                             "unsubscribe or ping")

    def dropped(self, reason: str) -> None:
        if self.closer is None and not self.ws.closed:
            self.closer = asyncio.create_task(self._close_slow(reason))

    async def _close_slow(self, reason: str) -> None:
        if self.writer is not None:
            self.writer.cancel()  # it may be stuck in a send to a socket nobody reads
        closed = False
        try:
            await asyncio.wait_for(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                              message=reason.encode()[:120]), CLOSE_TIMEOUT_SECONDS)
            closed = True
        except (TimeoutError, ConnectionError):
            pass
        finally:
            # The close frame could not get through (a client that reads nothing): a
            # graceful close would wait forever for the buffer to drain, so reset.
            if not closed and self.transport is not None:
                self.transport.abort()


async def websocket(request: web.Request) -> web.WebSocketResponse:
    viewer = await authenticate(request)
    last_id = parse_last_id(request.query.get("last_id"))
    config = request.app[keys.CONFIG]
    # No permessage-deflate: a zlib context per socket would cost far more memory than
    # these small JSON messages save.
    ws = web.WebSocketResponse(heartbeat=config.ws_heartbeat_seconds, compress=False,
                               max_msg_size=MAX_CLIENT_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise BadRequest("this endpoint speaks WebSocket (RFC 6455); use /api/events for SSE",
                         slug="websocket-expected")
    hub = request.app[keys.LIVE]
    user_id = viewer.user_id
    if not hub.admit(user_id, config.ws_connections_per_user):
        return await _refuse(request, ws, too_many(config.ws_connections_per_user))
    metrics = request.app[keys.METRICS]
    try:
        await ws.prepare(request)
        hub.sockets.add(ws)
        metrics.live_connections.inc()
        try:
            # A lean copy for the connection's lifetime: the shared default scopes instead
            # of a frozenset per socket (a WebSocket only reads).
            lean = Viewer(viewer.user_id, viewer.username, viewer.is_admin, None, viewer.via)
            del viewer  # this frame lives as long as the socket
            await Connection(request, ws, lean).run(last_id)
        finally:
            hub.sockets.discard(ws)
            metrics.live_connections.dec()
    finally:
        hub.release(user_id)
    return ws


async def _refuse(request: web.Request, ws: web.WebSocketResponse, reason: str
                  ) -> web.WebSocketResponse:
    """Over ws_connections_per_user: upgrade, then close at once with 1008 and the reason.

    RFC 6455 section 7.4.1: 1008 is the generic code for a message that "violates its
    policy". A refusal of the handshake itself (429) would reach no page: the browser's
    WebSocket API reports a failed handshake only as a close with 1006 and no reason
    (WHATWG WebSockets, "fail the WebSocket connection"), while a close code and reason
    reach its CloseEvent.
    """
    await ws.prepare(request)
    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode())
    return ws
