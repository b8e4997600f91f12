"""The fast lane (server/fastlane/): repeated anonymous playlist GETs answered from the
full stack's remembered answer, and everything else still answered by the full stack.

Raw sockets, so that keep-alive, pipelining and split request heads are what the test
says they are."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server import keys, storage
from server.app import create_app
from server.fastlane import AnswerBook
from server.fastlane.protocol import parse
from tests.conftest import LaneTestServer, make_config
from tests.helpers import sign_up
from tests.playback.conftest import Tree, add_video

MEDIA = "hls/360p/index.m3u8"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Conn:
    """One kept-alive HTTP/1.1 connection, spoken by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client: TestClient) -> Conn:
        assert client.port is not None
        return cls(*await asyncio.open_connection("127.0.0.1", client.port))

    async def send(self, *heads: str) -> None:
        self.writer.write("".join(heads).encode())
        await self.writer.drain()

    async def reply(self, head_only: bool = False) -> Reply:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return Reply(int(lines[0].split(" ")[1]), headers, body)

    async def get(self, path: str, *extra: str, method: str = "GET") -> Reply:
        await self.send(request(path, *extra, method=method))
        return await self.reply(head_only=method == "HEAD")

    def close(self) -> None:
        self.writer.close()


def request(path: str, *extra: str, method: str = "GET") -> str:
    return "".join([f"{method} {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: lane-test\r\n",
                    *(f"{line}\r\n" for line in extra), "\r\n"])


def book(client: TestClient) -> AnswerBook:
    return client.app[keys.ANSWERS]


async def playlist_of_new_video(client: TestClient, tree: Tree, owner: str) -> tuple[str, str]:
    """A public video of a new user: its id and its 360p media playlist's path."""
    vid = await add_video(client, await sign_up(client, owner), tree)
    return vid, f"/api/videos/{vid}/{MEDIA}"


async def warm(client: TestClient, path: str, *extra: str) -> Reply:
    """The full stack's answer, on a connection of its own: a connection starts in the
    lane only while what it asks for is remembered, and leaves it for good otherwise."""
    conn = await Conn.open(client)
    reply = await conn.get(path, *extra)
    conn.close()
    return reply


async def test_repeat_is_answered_by_the_lane_as_the_full_stack_answered(
        client: TestClient, hls_tree: Tree) -> None:
    _vid, path = await playlist_of_new_video(client, hls_tree, "lane-owner")
    first = await warm(client, path)
    assert first.status == 200 and book(client).answered == 0
    conn = await Conn.open(client)
    second = await conn.get(path)
    assert book(client).answered == 1
    assert second.body == first.body == (hls_tree.root / MEDIA).read_bytes()
    varying = {"date", "ratelimit-remaining", "ratelimit-reset"}
    assert {k: v for k, v in second.headers.items() if k not in varying} == {
        k: v for k, v in first.headers.items() if k not in varying}
    assert {"date", "etag", "x-content-type-options", "content-security-policy",
            "ratelimit-limit", "cache-control", "server"} <= second.headers.keys()
    # The gzip form is remembered on its own.
    zipped = [await warm(client, path, "Accept-Encoding: br, gzip"),
              await conn.get(path, "Accept-Encoding: br, gzip")]
    assert book(client).answered == 2
    assert zipped[1].headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped[1].body) == first.body
    assert zipped[0].headers["etag"] == zipped[1].headers["etag"] != first.headers["etag"]
    conn.close()


async def test_made_private_is_hidden_at_once(client: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(client, "lane-private")
    vid = await add_video(client, owner, hls_tree)
    path = f"/api/videos/{vid}/hls/master.m3u8"
    await warm(client, path)
    conn = await Conn.open(client)
    assert (await conn.get(path)).status == 200
    assert book(client).answered == 1
    resp = await client.patch(f"/api/videos/{vid}", json={"privacy": "private"},
                              headers=owner.headers)
    assert resp.status == 200
    hidden = await conn.get(path)
    assert hidden.status == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    assert book(client).answered == 1
    conn.close()


@pytest.mark.parametrize(("extra", "method", "status"), [
    (("If-None-Match: {etag}",), "GET", 304),
    (("Range: bytes=0-9",), "GET", 206),
    ((), "HEAD", 200),
    (("Authorization: Bearer not-a-token",), "GET", 401),
    (("Cookie: rh_viewer=abc",), "GET", 200),
    (("Connection: close",), "GET", 200),
])
async def test_other_requests_get_the_full_stack(
        client: TestClient, hls_tree: Tree, extra: tuple[str, ...], method: str,
        status: int) -> None:
    _vid, path = await playlist_of_new_video(client, hls_tree, "lane-other")
    full = await warm(client, path)
    conn = await Conn.open(client)
    assert (await conn.get(path)).status == 200 and book(client).answered == 1
    lines = [line.format(etag=full.headers["etag"]) for line in extra]
    answer = await conn.get(path, *lines, method=method)
    assert answer.status == status
    assert book(client).answered == 1
    if status == 206:
        assert answer.body == full.body[:10]
    if method == "HEAD":
        assert answer.headers["content-length"] == str(len(full.body))
    conn.close()


async def test_a_signed_or_queried_url_is_never_answered_by_the_lane(
        client: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(client, "lane-query")
    vid = await add_video(client, owner, hls_tree)
    for _ in range(2):
        assert (await warm(client, f"/api/videos/{vid}/{MEDIA}?sig=forged")).status == 403
        assert (await warm(client, f"/api/videos/{vid}/{MEDIA}?x=1")).status == 200
    assert book(client).answered == 0 and len(book(client)) == 0


async def test_pipelined_and_split_requests(client: TestClient, hls_tree: Tree) -> None:
    vid, path = await playlist_of_new_video(client, hls_tree, "lane-pipe")
    expected = (hls_tree.root / MEDIA).read_bytes()
    assert (await warm(client, path)).body == expected
    conn = await Conn.open(client)
    # Three in one write: the lane answers all three, in order.
    await conn.send(*(request(path) for _ in range(3)))
    assert [(await conn.reply()).body for _ in range(3)] == [expected] * 3
    assert book(client).answered == 3
    # One the lane answers, then a HEAD and a poster it does not: still in order.
    await conn.send(request(path), request(path, method="HEAD"),
                    request(f"/api/videos/{vid}/poster.jpg"))
    first, head, poster = [await conn.reply(), await conn.reply(head_only=True),
                           await conn.reply()]
    assert first.body == expected and head.status == 200
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.body == (hls_tree.root / "poster.jpg").read_bytes()
    assert book(client).answered == 4
    conn.close()
    # A head that arrives in two pieces is left to aiohttp's parser, and answered.
    conn = await Conn.open(client)
    text = request(path)
    await conn.send(text[:20])
    await asyncio.sleep(0.05)
    await conn.send(text[20:])
    assert (await conn.reply()).body == expected
    assert (await conn.get(path)).body == expected
    assert book(client).answered == 4
    conn.close()


async def test_a_changed_playlist_is_served_within_seconds(
        client: TestClient, hls_tree: Tree) -> None:
    vid, path = await playlist_of_new_video(client, hls_tree, "lane-change")
    before = (await warm(client, path)).body
    conn = await Conn.open(client)
    await conn.get(path)
    assert book(client).answered == 1
    stored = storage.video_dir(client.app[keys.CONFIG], vid) / MEDIA
    changed = before.replace(b"#EXT-X-ENDLIST\n", b"") + b"#EXT-X-ENDLIST\n"
    changed = changed.replace(b"#EXTM3U\n", b"#EXTM3U\n## changed\n")
    temp = stored.with_suffix(".tmp")
    temp.write_bytes(changed)
    os.replace(temp, stored)
    deadline = time.monotonic() + 5
    body = before
    while body != changed and time.monotonic() < deadline:
        body = (await conn.get(path)).body
        await asyncio.sleep(0.05)
    assert body == changed
    conn.close()


@pytest.fixture
async def limited(aiohttp_client: AiohttpClient, tmp_path: Path) -> AsyncIterator[TestClient]:
    config = make_config(tmp_path / "data", rate_limit_per_minute=8)
    yield await aiohttp_client(LaneTestServer(create_app(config)))


async def test_lane_answers_spend_the_rate_limit(limited: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(limited, "lane-limit")  # by user: not the address's budget
    vid = await add_video(limited, owner, hls_tree)
    path = f"/api/videos/{vid}/{MEDIA}"
    replies = [await warm(limited, path)]
    conn = await Conn.open(limited)
    replies += [await conn.get(path) for _ in range(9)]
    statuses = [r.status for r in replies]
    assert 429 in statuses and statuses[:2] == [200, 200]
    assert book(limited).answered >= 1
    served = [r for r in replies if r.status == 200]
    remaining = [int(r.headers["ratelimit-remaining"]) for r in served]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
    refused = replies[statuses.index(429)]
    assert "retry-after" in refused.headers
    assert refused.headers["content-type"] == "application/problem+json"
    conn.close()


async def test_lane_answers_are_logged_and_counted(
        client: TestClient, hls_tree: Tree, caplog: pytest.LogCaptureFixture) -> None:
    _vid, path = await playlist_of_new_video(client, hls_tree, "lane-log")
    book(client).access_log = logging.getLogger("aiohttp.access")
    await warm(client, path)
    conn = await Conn.open(client)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for _ in range(2):
            await conn.get(path)
    assert book(client).answered == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert sum(f'"GET {path} HTTP/1.1" 200' in line and '"lane-test"' in line
               for line in lines) == 2
    metrics = await (await client.get("/metrics")).text()
    route = "/api/videos/{video_id}/hls/{rendition}/index.m3u8"
    assert (f'reelhouse_http_requests_total{{method="GET",route="{route}",status="200"}} 3.0'
            in metrics)
    conn.close()


async def test_shutdown_closes_connections_the_lane_holds(
        aiohttp_client: AiohttpClient, tmp_path: Path, hls_tree: Tree) -> None:
    server = LaneTestServer(create_app(make_config(tmp_path / "data")))
    client = await aiohttp_client(server)
    owner = await sign_up(client, "lane-shutdown")
    vid = await add_video(client, owner, hls_tree)
    await warm(client, f"/api/videos/{vid}/{MEDIA}")
    conn = await Conn.open(client)
    await conn.get(f"/api/videos/{vid}/{MEDIA}")
    assert book(client).answered == 1
    await server.close()
    assert await asyncio.wait_for(conn.reader.read(), 5) == b""
    conn.close()


GOOD = b"GET /p/index.m3u8 HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip;q=1\r\nUser-Agent: tv"


@pytest.mark.parametrize("head", [
    GOOD.replace(b"GET", b"HEAD"),
    GOOD.replace(b"HTTP/1.1", b"HTTP/1.0"),
    GOOD.replace(b"index.m3u8", b"index.m3u8?a=1"),
    GOOD.replace(b"index.m3u8", b"index%2Em3u8"),
    GOOD.replace(b"/p/", b"http://h/p/"),
    GOOD.replace(b"Host: h\r\n", b""),
    GOOD.replace(b"Host: h", b"Host: h\r\nHost: i"),
    GOOD.replace(b"User-Agent: tv", b"User-Agent: tv\r\n folded"),
    GOOD.replace(b"User-Agent", b"User Agent"),
    GOOD.replace(b"User-Agent: tv", b"User-Agent: t\x00v"),
    GOOD + b"\r\nCookie: a=b",
    GOOD + b"\r\nauthorization: Bearer x",
    GOOD + b"\r\nIf-Modified-Since: Wed, 02 Dec 2026 10:00:00 GMT",
    GOOD + b"\r\nContent-Length: 0",
    GOOD + b"\r\nConnection: close",
    GOOD + b"\r\nUpgrade: websocket",
])
def test_heads_the_lane_leaves_to_the_full_stack(head: bytes) -> None:
    assert parse(head) is None


def test_head_the_lane_reads() -> None:
    parsed = parse(GOOD + b"\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: Keep-Alive")
    assert parsed is not None
    assert (parsed.target, parsed.gzipped, parsed.forwarded, parsed.agent) == (
        b"/p/index.m3u8", True, "10.0.0.1", "tv")
    assert parse(GOOD.replace(b"gzip;q=1", b"gzip;q=0")).gzipped is False  # type: ignore[union-attr]


async def test_a_connection_comes_back_to_the_lane_between_full_stack_answers(
        client: TestClient, hls_tree: Tree) -> None:
    vid, path = await playlist_of_new_video(client, hls_tree, "lane-back")
    conn = await Conn.open(client)
    first = await conn.get(path)  # not remembered yet: the full stack answers
    assert first.status == 200 and book(client).answered == 0
    assert (await conn.get(path)).body == first.body
    assert book(client).answered == 1
    poster = await conn.get(f"/api/videos/{vid}/poster.jpg")
    assert poster.body == (hls_tree.root / "poster.jpg").read_bytes()
    api = await conn.get(f"/api/videos/{vid}")
    assert api.status == 200 and b'"streams"' in api.body
    assert (await conn.get(path)).body == first.body
    assert book(client).answered == 2
    # Pipelined behind a request the full stack holds, the playlist waits its turn there.
    await conn.send(request(f"/api/videos/{vid}/poster.jpg"), request(path))
    assert (await conn.reply()).body == poster.body
    assert (await conn.reply()).body == first.body
    assert book(client).answered == 2
    assert (await conn.get(path)).body == first.body
    assert book(client).answered == 3
    conn.close()


async def test_a_request_with_a_body_gives_the_connection_to_aiohttp(
        client: TestClient, hls_tree: Tree) -> None:
    vid, path = await playlist_of_new_video(client, hls_tree, "lane-body")
    await warm(client, path)
    conn = await Conn.open(client)
    assert (await conn.get(path)).status == 200 and book(client).answered == 1
    body = '{"position": 1.5}'
    await conn.send(f"POST /api/videos/{vid}/progress HTTP/1.1\r\nHost: test\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    + body + request(path))
    progress, playlist = await conn.reply(), await conn.reply()
    assert progress.status in (200, 204) and playlist.status == 200
    assert (await conn.get(path)).status == 200
    assert book(client).answered == 1  # aiohttp's connection from the POST on
    conn.close()
