"""The fast lane: each connection's protocol, ahead of aiohttp's own.

HLS players ask for the same small playlists again and again, and aiohttp spends far more
on building a request and a response than a remembered answer costs to send. So every
plain-HTTP connection starts with a `LaneProtocol`. A complete request head that the
answer book can answer (answers.py: an anonymous GET of a remembered playlist) gets its
answer here, with a fresh `Date`, its own rate-limit hit, metrics and access log line.
Every other request goes, as it came, to an aiohttp `RequestHandler` made for the
connection, which answers it with the full stack. When that handler has answered all it
was given and waits for more, the lane may answer again; requests that are pipelined
behind one aiohttp holds stay in order.

The lane only hands aiohttp whole request heads without a body, so aiohttp's parser is
between messages whenever the lane looks. Anything else (a body, an upgrade, a head split
over reads, folded or bare-LF lines) gives the connection to aiohttp for good
(`transport.set_protocol`).
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from server.fastlane.answers import DISQUALIFYING, AnswerBook, accepts_gzip

KEEPALIVE_SECONDS = 75.0  # aiohttp's keep-alive timeout, for connections the lane holds
PARSED_HEADS = 1024
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BODY_OR_SWITCH = (b"\ncontent-length", b"\ntransfer-encoding", b"\nupgrade", b"\n ", b"\n\t")


@dataclass(frozen=True)
class Head:
    target: bytes
    gzipped: bool
    forwarded: str | None
    agent: str


def parse(head: bytes) -> Head | None:
    """A request head this lane may answer (RFC 9112 2-5), or None."""
    line_end = head.find(b"\r\n")
    if line_end < 0 or not head.startswith(b"GET /") or head[line_end - 9:line_end] != (
            b" HTTP/1.1"):
        return None
    target = head[4:line_end - 9]
    if b" " in target or b"?" in target or b"%" in target:
        return None
    accepted = forwarded = None
    agent = "-"
    has_host = False
    for line in head[line_end + 2:].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        # A token before the colon, no obs-fold, no control bytes (RFC 9112 5.1, 5.2).
        if not colon or _TOKEN.fullmatch(name) is None or _CONTROL.search(value):
            return None
        key = name.decode("latin-1").lower()
        if key in DISQUALIFYING:
            return None
        text = value.decode("latin-1").strip()
        if key == "host":
            if has_host:
                return None  # RFC 9112 3.2: more than one Host is a 400
            has_host = True
        elif key == "accept-encoding":
            accepted = text if accepted is None else f"{accepted}, {text}"
        elif key == "x-forwarded-for":
            forwarded = text if forwarded is None else f"{forwarded}, {text}"
        elif key == "user-agent":
            agent = text
        elif key == "connection" and text.lower() != "keep-alive":
            return None
    if not has_host:
        return None  # RFC 9112 3.2: the full stack answers 400
    return Head(target, accepts_gzip(accepted), forwarded, agent)


def _whole_without_body(head: bytes) -> bool:
    """A head aiohttp's parser will finish with nothing after it (RFC 9112 6.3: a request
    has a body only with Content-Length or Transfer-Encoding)."""
    lowered = head.lower()
    return b"\r\n" in head and not any(mark in lowered for mark in _BODY_OR_SWITCH) and (
        lowered.count(b"\n") == lowered.count(b"\r\n"))


def _waiting(handler: RequestHandler) -> bool:
    """aiohttp's handler has answered all it was given and waits for the next request:
    `RequestHandler.start()` awaits `_waiter` only then. This reads its private state; if
    a later aiohttp changes it, this says False and the lane stops taking connections
    back, which is slower but never wrong."""
    waiter = getattr(handler, "_waiter", None)
    return (isinstance(waiter, asyncio.Future) and not waiter.done()
            and not getattr(handler, "_messages", True))


class LaneProtocol(asyncio.Protocol):
    def __init__(self, lane: Lane) -> None:
        self._lane = lane
        self._book = lane.book
        self._transport: asyncio.Transport | None = None
        self._aiohttp: RequestHandler | None = None
        self._peer = ""
        self._paused_here = False
        self.last_active = time.monotonic()

    @property
    def idle(self) -> bool:
        return self._aiohttp is None or _waiting(self._aiohttp)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are one in kind.
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) else ""
        self._lane.connections.add(self)

    def data_received(self, data: bytes) -> None:
        start, size = 0, len(data)
        while start < size:
            end = data.find(b"\r\n\r\n", start)
            if end < 0:
                break  # a head split over reads: aiohttp's parser will join it
            head = data[start:end]
            if not (self.idle and self._answer(head)):
                if not _whole_without_body(head):
                    break
                self._to_aiohttp(data[start:end + 4])
            start = end + 4
        self.last_active = time.monotonic()
        if start < size:
            self._give_up(data[start:])

    def _answer(self, head: bytes) -> bool:
        assert self._transport is not None
        started = time.perf_counter()
        parsed = self._lane.parse(head)
        if parsed is None:
            return False
        reply = self._book.reply(parsed.target, parsed.gzipped, self._peer, parsed.forwarded,
                                 started)
        if reply is None:
            return False
        if self._aiohttp is not None:
            # The connection is in use, so aiohttp's idle keep-alive timer must not close it
            # (keep_alive() cancels the timer; aiohttp sets one again after its next answer).
            self._aiohttp.keep_alive(True)
        self._transport.write(reply)
        self._book.log(self._peer, parsed.target, len(reply), started, parsed.agent)
        return True

    def _handler(self) -> RequestHandler | None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return None
        if self._aiohttp is None:
            self._aiohttp = self._lane.handler_factory()
            self._aiohttp.connection_made(transport)
        return self._aiohttp

    def _to_aiohttp(self, data: bytes) -> None:
        handler = self._handler()
        if handler is not None:
            handler.data_received(data)

    def _give_up(self, data: bytes) -> None:
        """aiohttp's protocol takes the transport itself, for the rest of the connection."""
        handler = self._handler()
        self._lane.connections.discard(self)
        if handler is None or self._transport is None:
            return
        self._transport.set_protocol(handler)
        if self._paused_here:
            self._paused_here = False
            self._transport.resume_reading()  # aiohttp pauses reading on its own terms
        handler.data_received(data)

    def eof_received(self) -> bool:
        if self._aiohttp is not None:
            self._aiohttp.eof_received()
        return False  # close, as aiohttp's protocol does (its eof_received returns None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lane.connections.discard(self)
        self._transport = None
        if self._aiohttp is not None:
            self._aiohttp.connection_lost(exc)

    # Flow control: aiohttp's writer waits on these; the lane's own answers stop being
    # read while the client does not read them.
    def pause_writing(self) -> None:
        if self._aiohttp is not None:
            self._aiohttp.pause_writing()
        if self.idle and self._transport is not None:
            self._paused_here = True
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._aiohttp is not None:
            self._aiohttp.resume_writing()
        if self._paused_here and self._transport is not None:
            self._paused_here = False
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Lane:
    """The protocol factory for a listening socket, and the connections it holds."""

    def __init__(self, book: AnswerBook, handler_factory: Callable[[], RequestHandler]) -> None:
        self.book = book
        self.handler_factory = handler_factory
        self.connections: weakref.WeakSet[LaneProtocol] = weakref.WeakSet()
        self._sweeper: asyncio.Task[None] | None = None
        self._parsed: dict[bytes, Head] = {}

    def __call__(self) -> LaneProtocol:
        return LaneProtocol(self)

    def parse(self, head: bytes) -> Head | None:
        """`parse`, once per distinct head: a player sends the same one every time."""
        parsed = self._parsed.get(head)
        if parsed is None:
            parsed = parse(head)
            if parsed is not None:
                if len(self._parsed) >= PARSED_HEADS:
                    self._parsed.clear()
                self._parsed[head] = parsed
        return parsed

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Idle keep-alive connections close after KEEPALIVE_SECONDS, as aiohttp's do."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS / 5)
            idle_since = time.monotonic() - KEEPALIVE_SECONDS
            for conn in [c for c in self.connections
                         if c.last_active < idle_since and c.idle]:
                conn.close()

    def close(self) -> None:
        """At shutdown: idle connections close now; aiohttp finishes the others' requests."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in [c for c in self.connections if c.idle]:
            conn.close()


class LaneSite(web.TCPSite):
    """A TCPSite whose connections start in the fast lane (plain TCP only: with TLS the
    site is aiohttp's own)."""

    def __init__(self, runner: web.AppRunner, book: AnswerBook, host: str, port: int) -> None:
        super().__init__(runner, host, port)
        self._book = book
        self._lane: Lane | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._lane = Lane(self._book, server)
        self._lane.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._lane, self._host, self._port,
                                                backlog=self._backlog)
        self._bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await super().stop()
        if self._lane is not None:
            self._lane.close()
