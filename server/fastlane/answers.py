"""The answers the fast lane may repeat: what the full stack said, and for how long.

A playlist handler `offer`s its answer when the request is one the lane could see again
and answer the same way (`plain_request`: an anonymous GET without a query, conditionals
or a body). Once the response has all its headers (security headers come from
on_response_prepare hooks too), `remember_offered` keeps it, as the bytes aiohttp sends,
for `FRESH_SECONDS`; then the offer's own check (`Offer.still_true`: the video as public
and as processed as it was, the playlist file unchanged) runs in the background while the
answer is still used, and either renews it or drops it. Making a video private or removing
it forgets its answers at once (`PlaybackState.forget_video`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.http import SERVER_SOFTWARE

from server import keys
from server.accesslog import LINE_FORMAT, redact
from server.config import Config
from server.metrics import HttpStats
from server.middleware import address_bucket, forwarded_address, rate_headers, route_name
from server.playback.ranges import http_date
from server.ratelimit import RateLimiter, Verdict

FRESH_SECONDS = 1.0  # as long as the playlist cache trusts a file without a fresh stat
STALE_SECONDS = 2.0  # the longest an answer is used while a re-check of it is running
MAX_ANSWERS = 4096
# Request headers that may change the answer, or the framing: never answered here.
# (RFC 9110 13.1 conditionals and 14.2 Range; credentials; a body; a protocol switch.)
DISQUALIFYING = frozenset({
    "authorization", "cookie", "range", "if-range", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "content-length", "transfer-encoding",
    "expect", "upgrade", "te", "x-http-method-override",
})
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
    return not any(name.lower() in DISQUALIFYING for name in headers)


class _Clock:
    """The `Date` header (RFC 9110 6.6.1), worked out once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {http_date(now)}\r\n".encode()
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
        self.access_log: logging.Logger | None = None

    @property
    def answered(self) -> int:
        return self._stats.fast_lane_answers

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
            self.clear()
        self._answers[request.raw_path.encode(), offer.gzipped] = Answer(
            ("\r\n".join(lines) + "\r\n").encode("latin-1"), body, route, offer,
            time.monotonic() + FRESH_SECONDS)

    def forget_video(self, video_id: str) -> None:
        for key in [k for k, a in self._answers.items() if a.offer.video_id == video_id]:
            self._drop(key)

    def clear(self) -> None:
        """At shutdown: no re-check may outlive the database it reads."""
        for key in list(self._answers):
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
        address = forwarded_address(peer, forwarded, self._trusted)
        verdict = self._limiter.hit(address_bucket("any", address), self._per_minute)
        if not verdict.allowed:
            return None  # the full stack says 429, with its Retry-After
        self._stats.observe("GET", answer.route, 200, time.perf_counter() - started)
        self._stats.fast_lane_answers += 1
        return b"".join((answer.head, self._clock.date_line(), _rate_lines(verdict),
                         b"\r\n", answer.body))

    def log(self, peer: str, target: bytes, length: int, started: float, agent: str) -> None:
        if self.access_log is not None:
            self.access_log.info(LINE_FORMAT, peer, "GET", redact(target.decode("latin-1")),
                                 1, 1, 200, length, time.perf_counter() - started, agent)


def _rate_lines(verdict: Verdict) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in rate_headers(verdict).items()
                   ).encode()


# The full stack's side: a playlist handler offers its answer; once the response has all
# its headers (security headers come from on_response_prepare too), it is remembered.
OFFERED: web.RequestKey[Offer] = web.RequestKey("fastlane_offered", Offer)


def offer(request: web.Request, video_id: str, gzipped: bool,
          still_true: Revalidator) -> None:
    if plain_request(request):
        request[OFFERED] = Offer(video_id, gzipped, still_true)


async def forget_answers(app: web.Application) -> None:
    """on_shutdown."""
    app[keys.ANSWERS].clear()


async def remember_offered(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare, registered after every hook that adds headers."""
    offered = request.get(OFFERED)
    if (offered is not None and isinstance(request, web.Request)
            and isinstance(response, web.Response)):
        request.app[keys.ANSWERS].remember(request, response, route_name(request), offered)
