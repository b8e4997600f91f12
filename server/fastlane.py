"""A fast lane in front of aiohttp for the hottest answer the server gives: a playlist.

A TV or a player polls the same small HLS playlists over and over, and an anonymous GET
of a public or unlisted video's playlist has one answer for everyone for the next moment.
The full stack (routing, access, rate limit, identity, metrics, security headers) works
that answer out once; `remember` then keeps it, as the bytes aiohttp sent, for
`FRESH_SECONDS`. Meanwhile the connection's protocol (`LaneProtocol`) answers the same
request straight from those bytes, with a fresh `Date`, its own rate-limit hit and
metrics, without building an aiohttp request.

Anything else (a method but GET, a query, credentials, a conditional or range, a body,
a request split over reads, a target not remembered, a spent rate limit) hands the
connection over to aiohttp's own protocol with every byte received so far
(`transport.set_protocol`), and the lane steps aside for the rest of that connection.
So an unusual request always gets the full stack's answer, and the lane only ever repeats
what the full stack said a moment ago to a request that differs from it in nothing the
answer depends on. Making a video private or removing it forgets its answers at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import hdrs, web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler

from server import keys
from server.accesslog import LINE_FORMAT, redact
from server.config import Config
from server.metrics import HttpStats
from server.ratelimit import RateLimiter, Verdict

FRESH_SECONDS = 1.0  # as long as the playlist cache trusts a file without a fresh stat
STALE_SECONDS = 2.0  # the longest an answer is used while a re-check of it is running
KEEPALIVE_SECONDS = 75.0  # aiohttp's keep-alive timeout, for connections the lane holds
MAX_ANSWERS = 4096
# Request headers that may change the answer, or the framing: never answered here.
# (RFC 9110 13.1 conditionals and 14.2 Range; credentials; a body; a protocol switch.)
_DISQUALIFYING = frozenset({
    "authorization", "cookie", "range", "if-range", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "content-length", "transfer-encoding",
    "expect", "upgrade", "te", "x-http-method-override",
})
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DROPPED_RESPONSE_HEADERS = frozenset({
    "date", "content-length", "server", "connection", "transfer-encoding",
})
_log = logging.getLogger(__name__)


Revalidator = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Offer:
    """What a handler says of its answer: whose it is, and how to tell it still holds."""

    video_id: str
    gzipped: bool
    still_true: Revalidator


@dataclass
class Answer:
    head: bytes  # status line and fixed headers, without Date and RateLimit-*
    body: bytes
    route: str
    offer: Offer
    expires: float
    checking: asyncio.Task[None] | None = None


def accepts_gzip(accepted: str | None) -> bool:
    """RFC 9110 12.5.3: gzip (or *) listed without q=0."""
    if not accepted:
        return False
    for item in accepted.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def plain_request(request: web.Request) -> bool:
    """True when the lane could see this request again and answer it the same way."""
    if (request.method != "GET" or request.version != (1, 1) or request.secure
            or "?" in request.raw_path or "%" in request.raw_path):
        return False
    headers = request.headers
    if hdrs.HOST not in headers:
        return False
    connection = headers.get(hdrs.CONNECTION)
    if connection is not None and connection.strip().lower() != "keep-alive":
        return False
    return not any(name.lower() in _DISQUALIFYING for name in headers)


class _Clock:
    """The `Date` header (RFC 9110 6.6.1), worked out once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n".encode()
        return self._line


class AnswerBook:
    """Answers the full stack gave, by (request target, gzip accepted)."""

    def __init__(self, config: Config, limiter: RateLimiter, stats: HttpStats) -> None:
        self._answers: dict[tuple[bytes, bool], Answer] = {}
        self._limiter = limiter
        self._stats = stats
        self._per_minute = config.rate_limit_per_minute
        self._trusted = frozenset(config.trusted_proxy_set)
        self._clock = _Clock()
        self.answered = 0  # requests the lane answered itself
        self.access_log: logging.Logger | None = None

    def __len__(self) -> int:
        return len(self._answers)

    def remember(self, request: web.Request, response: web.Response, route: str,
                 offer: Offer) -> None:
        body = response.body
        if (not isinstance(body, bytes) or response.status != 200 or response.cookies
                or hdrs.SET_COOKIE in response.headers):
            return  # an answer for one client only
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        for name, value in response.headers.items():
            lowered = name.lower()
            if lowered not in _DROPPED_RESPONSE_HEADERS and not lowered.startswith("ratelimit-"):
                lines.append(f"{name}: {value}")
        lines += [f"Content-Length: {len(body)}", f"Server: {SERVER_SOFTWARE}"]
        if len(self._answers) >= MAX_ANSWERS:
            for key in list(self._answers):
                self._drop(key)
        self._answers[request.raw_path.encode(), offer.gzipped] = Answer(
            ("\r\n".join(lines) + "\r\n").encode("latin-1"), body, route, offer,
            time.monotonic() + FRESH_SECONDS)

    def forget_video(self, video_id: str) -> None:
        for key in [k for k, a in self._answers.items() if a.offer.video_id == video_id]:
            self._drop(key)

    def _drop(self, key: tuple[bytes, bool]) -> None:
        answer = self._answers.pop(key, None)
        if answer is not None and answer.checking is not None:
            answer.checking.cancel()

    def _usable(self, key: tuple[bytes, bool], answer: Answer) -> bool:
        """Fresh, or being re-checked (stale-while-revalidate, RFC 5861 3, for the few
        milliseconds a check takes; a check that hangs ends the answer's use)."""
        now = time.monotonic()
        if answer.expires > now:
            return True
        if answer.checking is None:
            answer.checking = asyncio.get_running_loop().create_task(self._check(key, answer))
        return answer.expires + STALE_SECONDS > now

    async def _check(self, key: tuple[bytes, bool], answer: Answer) -> None:
        try:
            holds = await answer.offer.still_true()
        except Exception:
            _log.exception("re-checking a remembered answer failed; it is dropped")
            holds = False
        answer.checking = None
        if self._answers.get(key) is not answer:
            return
        if holds:
            answer.expires = time.monotonic() + FRESH_SECONDS
        else:
            del self._answers[key]  # the next request goes to the full stack

    def reply(self, target: bytes, gzipped: bool, peer: str, forwarded: str | None,
              started: float) -> bytes | None:
        """The whole response, or None when the full stack must answer."""
        key = (target, gzipped)
        answer = self._answers.get(key)
        if answer is None or not self._usable(key, answer):
            return None
        address = peer
        if forwarded and peer in self._trusted:
            address = forwarded.split(",")[-1].strip() or peer
        verdict = self._limiter.hit(f"any:ip:{address}", self._per_minute)
        if not verdict.allowed:
            return None  # the full stack says 429, with its Retry-After
        self._stats.observe("GET", answer.route, 200, time.perf_counter() - started)
        self.answered += 1
        return b"".join((answer.head, self._clock.date_line(), _rate_lines(verdict),
                         b"\r\n", answer.body))

    def log(self, peer: str, target: bytes, length: int, started: float, agent: str) -> None:
        if self.access_log is not None:
            self.access_log.info(LINE_FORMAT, peer, "GET", redact(target.decode("latin-1")),
                                 1, 1, 200, length, time.perf_counter() - started, agent)


def _rate_lines(verdict: Verdict) -> bytes:
    if not verdict.limit:
        return b""
    return (f"RateLimit-Limit: {verdict.limit}\r\nRateLimit-Remaining: {verdict.remaining}"
            f"\r\nRateLimit-Reset: {verdict.reset_seconds}\r\n").encode()


@dataclass
class _Head:
    target: bytes
    gzipped: bool
    forwarded: str | None
    agent: str


def _parse(head: bytes) -> _Head | None:
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
        if key in _DISQUALIFYING:
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
    return _Head(target, accepts_gzip(accepted), forwarded, agent)


class LaneProtocol(asyncio.Protocol):
    """One connection: answered from the book while it can be, then aiohttp's."""

    def __init__(self, book: AnswerBook, handler_factory: Callable[[], RequestHandler],
                 lane: Lane) -> None:
        self._book = book
        self._factory = handler_factory
        self._lane = lane
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._paused = False
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are one in kind.
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) else ""
        self._lane.connections.add(self)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        start = 0
        book = self._book
        while start < len(data):
            end = data.find(b"\r\n\r\n", start)
            if end < 0:
                break  # a request split over reads: aiohttp's parser buffers it
            started = time.perf_counter()
            parsed = _parse(data[start:end])
            if parsed is None:
                break
            reply = book.reply(parsed.target, parsed.gzipped, self._peer, parsed.forwarded,
                               started)
            if reply is None:
                break
            self._transport.write(reply)
            book.log(self._peer, parsed.target, len(reply), started, parsed.agent)
            start = end + 4
        self.last_active = time.monotonic()
        if start < len(data):
            self.hand_over(data[start:])

    def hand_over(self, data: bytes = b"") -> None:
        """From now on aiohttp's RequestHandler owns the connection (and its shutdown)."""
        transport = self._transport
        self._lane.connections.discard(self)
        if transport is None or transport.is_closing():
            return
        handler = self._factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._paused:
            # aiohttp pauses on its own buffers, never on the reading paused here.
            transport.resume_reading()
            handler.pause_writing()
        if data:
            handler.data_received(data)

    def eof_received(self) -> bool:
        return False  # nothing in flight here: close

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lane.connections.discard(self)
        self._transport = None

    # A client that does not read its answers stops being read (flow control).
    def pause_writing(self) -> None:
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None:
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

    def __call__(self) -> LaneProtocol:
        return LaneProtocol(self.book, self.handler_factory, self)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Idle keep-alive connections close after KEEPALIVE_SECONDS, as aiohttp's do."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS / 5)
            idle_since = time.monotonic() - KEEPALIVE_SECONDS
            for conn in [c for c in self.connections if c.last_active < idle_since]:
                conn.close()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
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


# The full stack's side: a playlist handler offers its answer; once the response has all
# its headers (security headers come from on_response_prepare too), it is remembered.
OFFERED: web.RequestKey[Offer] = web.RequestKey("fastlane_offered", Offer)


def offer(request: web.Request, video_id: str, gzipped: bool,
          still_true: Revalidator) -> None:
    if plain_request(request):
        request[OFFERED] = Offer(video_id, gzipped, still_true)


async def remember_offered(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare, registered after every hook that adds headers."""
    offered = request.get(OFFERED)
    if (offered is not None and isinstance(request, web.Request)
            and isinstance(response, web.Response)):
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else "-"
        request.app[keys.ANSWERS].remember(request, response, route, offered)
