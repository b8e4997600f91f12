"""The shipped nginx config (contrib/nginx/reelhouse.conf) as a real cache in front of the
real server: nginx started here on free 127.0.0.1 ports with only its ports and paths
changed, the app from `create_app` on a real TCP port, every request the origin answers
recorded by an access logger. The second viewer of public media is served by nginx (the
origin sees the URL once), ranges come from the cached copy, private media and answers to
signed-in requests are never stored (requests with a token or a grant reach the origin as
sent, ranges included), and a video made private leaves the cache within the shared-cache
lifetime (nginx revalidates and gets the origin's 404)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from yarl import URL

from server.app import create_app
from tests.conftest import make_config
from tests.helpers import PASSWORD, User, sign_up
from tests.playback.conftest import Tree, add_video

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "contrib" / "nginx" / "reelhouse.conf"
ORIGIN = "http://tv.example"  # a player on another origin


@dataclass(frozen=True)
class Seen:
    """One request as the origin answered it."""
    method: str
    path_qs: str
    status: int
    headers: CIMultiDict[str]


@dataclass(frozen=True)
class Stack:
    origin: TestClient  # straight to the origin, for setting things up
    proxy: URL  # nginx
    seen: list[Seen]
    nginx_log: Path

    def origin_saw(self, path_qs: str) -> list[Seen]:
        return [s for s in self.seen if s.path_qs == path_qs]


def recorder(seen: list[Seen]) -> type[AbstractAccessLogger]:
    class Recorder(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse,
                time: float) -> None:
            seen.append(Seen(request.method, request.path_qs, response.status,
                             CIMultiDict(request.headers)))
    return Recorder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail("nginx is not installed; `make system-deps` installs it (Debian package "
                    "nginx), and this test needs it to check contrib/nginx/reelhouse.conf")
    return found


def site_config(origin_port: int, proxy_port: int, cache_dir: Path, access_log: Path) -> str:
    """The shipped file with the origin, listen address and paths of this test: each piece
    replaced must be there exactly once, so a change to the file fails here loudly."""
    text = SHIPPED.read_text()
    replacements = {
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{origin_port};",
        "listen 80;": f"listen 127.0.0.1:{proxy_port};",
        "proxy_cache_path /var/cache/nginx/reelhouse ": f"proxy_cache_path {cache_dir} ",
        "access_log /var/log/nginx/reelhouse.access.log ": f"access_log {access_log} ",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{SHIPPED} should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def main_config(base: Path) -> str:
    """What /etc/nginx/nginx.conf provides around a conf.d file, in the test's folder."""
    temp = {name: base / "temp" / name for name in ("body", "proxy", "fastcgi", "uwsgi",
                                                    "scgi")}
    for path in temp.values():
        path.mkdir(parents=True)
    # Workers run as the master's user when it is root (they write the cache folder).
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {base}/reelhouse.conf;
}}
"""


async def wait_for_port(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(200):  # 10 s at most
        if proc.returncode is not None:
            break
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    pytest.fail(f"nginx did not start: {log.read_text() if log.exists() else ''}")


@contextlib.asynccontextmanager
async def nginx(origin_port: int, base: Path) -> AsyncIterator[tuple[int, Path]]:
    binary = nginx_binary()
    base.mkdir()
    port, access_log = free_port(), base / "access.log"
    (base / "reelhouse.conf").write_text(site_config(origin_port, port, base / "cache",
                                                     access_log))
    conf = base / "nginx.conf"
    conf.write_text(main_config(base))
    stderr = base / "stderr.log"
    args = [binary, "-p", str(base), "-c", str(conf), "-e", str(base / "error.log")]
    check = await asyncio.create_subprocess_exec(*args, "-t", stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(check.communicate(), 30)
    assert check.returncode == 0, f"nginx -t refused the shipped config:\n{out.decode()}"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(*args, stdout=err, stderr=err)
    try:
        await wait_for_port(port, proc, base / "error.log")
        yield port, access_log
    finally:
        if proc.returncode is None:
            proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def stack(request: pytest.FixtureRequest, aiohttp_client: AiohttpClient,
                tmp_path: Path) -> AsyncIterator[Stack]:
    """Settings in `request.param` (indirect parametrization) override the defaults."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    seen: list[Seen] = []
    config = make_config(tmp_path / "data", trusted_proxies="127.0.0.1", access_log=True,
                         **overrides)
    server = TestServer(create_app(config))
    await server.start_server(loop=asyncio.get_running_loop(),
                              access_log_class=recorder(seen))
    origin = await aiohttp_client(server)
    assert server.port is not None
    async with nginx(server.port, tmp_path / "nginx") as (port, access_log):
        yield Stack(origin, URL(f"http://127.0.0.1:{port}"), seen, access_log)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def cache(self) -> str:
        return self.headers.get("X-Cache-Status", "")


def viewer(stack: Stack) -> aiohttp.ClientSession:
    """A separate client (its own connections and cookies) talking to nginx."""
    return aiohttp.ClientSession(base_url=stack.proxy,
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


async def fetch(session: aiohttp.ClientSession, url: str, **headers: str) -> Answer:
    async with session.get(url, headers={"Origin": ORIGIN, **headers}) as resp:
        return Answer(resp.status, CIMultiDict(resp.headers), await resp.read())


def resolve(base: str, uri: str) -> str:
    return str(URL(base).join(URL(uri)))


def uris(playlist: bytes) -> list[str]:
    """Every URI a playlist names (RFC 8216 section 4.1: plain lines and URI= attributes)."""
    found = []
    for line in playlist.decode().splitlines():
        if line.startswith("#"):
            if 'URI="' in line:
                found.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line.strip():
            found.append(line.strip())
    return found


async def media_urls(session: aiohttp.ClientSession, master: str) -> list[str]:
    """The master playlist, the first variant's media playlist, its init (for fMP4) and
    first segment, as a player walks them."""
    listed = uris((await fetch(session, master)).body)
    variant = resolve(master, next(u for u in listed if "index.m3u8" in u))
    listed = uris((await fetch(session, variant)).body)
    init = [resolve(variant, u) for u in listed if "init.mp4" in u]
    segment = resolve(variant, next(u for u in listed if "seg_" in u))
    return [master, variant, *init, segment]


async def video_json(session: aiohttp.ClientSession, vid: str,
                     user: User | None = None) -> dict[str, Any]:
    headers = user.headers if user else {}
    async with session.get(f"/api/videos/{vid}", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert "X-Cache-Status" not in resp.headers  # metadata is not in the cache's path
        return dict(await resp.json())


async def origin_count(stack: Stack, path_qs: str, expected: int) -> int:
    """Requests the origin answered for `path_qs`, once its access log has caught up
    with `expected` (the log line follows the last byte by a moment)."""
    for _ in range(40):
        if len(stack.origin_saw(path_qs)) >= expected:
            break
        await asyncio.sleep(0.05)
    return len(stack.origin_saw(path_qs))


async def nginx_log(stack: Stack, needle: str) -> str:
    for _ in range(40):
        text = stack.nginx_log.read_text()
        if needle in text:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r} never reached {stack.nginx_log}:\n{text}")


async def test_the_second_viewer_is_served_by_the_cache(stack: Stack, hls_tree: Tree) -> None:
    owner = await sign_up(stack.origin, "alice")
    vid = await add_video(stack.origin, owner, hls_tree)
    async with viewer(stack) as scout, viewer(stack) as first, viewer(stack) as second:
        # The URLs as a player finds them: the API's JSON, then the playlists (which
        # puts some of them in the cache already).
        body = await video_json(scout, vid)
        streams = body["streams"]
        urls = [*await media_urls(scout, streams["hls"]),
                *await media_urls(scout, streams["hls_ts"]),
                streams["progressive"][0]["url"], body["poster"], body["storyboard"]]
        assert len(urls) == 10
        assert all(u.startswith(f"/api/videos/{vid}/") and "?" not in u for u in urls)
        for url in urls:
            a = await fetch(first, url)
            b = await fetch(second, url)
            assert a.status == b.status == 200, (url, a.status, b.status)
            assert b.cache == "HIT" and b.body == a.body, (url, a.cache, b.cache)
            # Whoever asked first, the origin answered the URL once.
            assert await origin_count(stack, url, 1) == 1, url
            # The answer nginx keeps is the origin's, CORS and validators included; one
            # client's rate-limit counters are not handed to the next.
            assert b.headers["Access-Control-Allow-Origin"] == "*", url
            assert "ETag" in b.headers and "Last-Modified" in b.headers, url
            assert not any(h.lower().startswith("ratelimit-") for h in b.headers), url
        segment = urls[3]
        a = await fetch(first, segment)
        assert a.headers["Cache-Control"] == (
            "public, max-age=31536000, immutable, s-maxage=300")
        # A URL nobody asked for before: the first viewer misses, the second hits, and
        # the origin answers it once.
        cold = segment.replace("seg_00000", "seg_00001")
        a, b = await fetch(first, cold), await fetch(second, cold)
        assert (a.status, a.cache, b.status, b.cache) == (200, "MISS", 200, "HIT")
        on_disk = hls_tree.root / "hls" / cold.split("/")[-2] / "seg_00001.m4s"
        assert a.body == b.body == on_disk.read_bytes()
        assert await origin_count(stack, cold, 1) == 1
        # CORS preflights go to the origin and come back whole.
        async with first.options(cold, headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range"}) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Range" in resp.headers["Access-Control-Allow-Headers"]


async def test_ranges_are_answered_from_the_cached_copy(stack: Stack, hls_tree: Tree) -> None:
    owner = await sign_up(stack.origin, "alice")
    vid = await add_video(stack.origin, owner, hls_tree)
    path = f"/api/videos/{vid}/hls/360p/seg_00001.m4s"
    data = (hls_tree.root / "hls" / "360p" / "seg_00001.m4s").read_bytes()
    size = len(data)
    async with viewer(stack) as first, viewer(stack) as second:
        # A cold URL asked for with a range: nginx fetches the whole segment (no Range on
        # the way to the origin), keeps it and answers the range.
        a = await fetch(first, path, Range="bytes=100-1099")
        assert (a.status, a.cache, a.body) == (206, "MISS", data[100:1100])
        assert a.headers["Content-Range"] == f"bytes 100-1099/{size}"
        assert a.headers["Access-Control-Allow-Origin"] == "*"
        assert await origin_count(stack, path, 1) == 1
        assert "Range" not in stack.origin_saw(path)[0].headers
        assert stack.origin_saw(path)[0].status == 200
        # Other ranges, for another viewer, from the cached copy.
        b = await fetch(second, path, Range="bytes=-500")
        assert (b.status, b.cache, b.body) == (206, "HIT", data[-500:])
        assert b.headers["Content-Range"] == f"bytes {size - 500}-{size - 1}/{size}"
        c = await fetch(second, path, Range=f"bytes={size // 2}-")
        assert (c.status, c.cache, c.body) == (206, "HIT", data[size // 2:])
        d = await fetch(second, path, Range=f"bytes={size + 10}-")
        assert (d.status, d.cache) == (416, "HIT")
        # Conditionals too: a 304 from the cache.
        e = await fetch(second, path, **{"If-None-Match": a.headers["ETag"]})
        assert (e.status, e.cache, e.body) == (304, "HIT", b"")
        assert await origin_count(stack, path, 1) == 1


async def test_private_media_is_never_stored(stack: Stack, hls_tree: Tree) -> None:
    owner = await sign_up(stack.origin, "alice")
    vid = await add_video(stack.origin, owner, hls_tree, privacy="private")
    async with viewer(stack) as bearer, viewer(stack) as browser, \
            viewer(stack) as signed, viewer(stack) as stranger:
        streams = (await video_json(bearer, vid, owner))["streams"]
        assert "?sig=" in streams["hls"]
        signed_urls = await media_urls(signed, streams["hls"])
        assert all("?sig=" in u for u in signed_urls)
        plain = [u.split("?", 1)[0] for u in signed_urls]
        async with browser.post("/api/auth/login", json={"username": "alice",
                                                         "password": PASSWORD}) as resp:
            assert resp.status == 200
        ways: dict[str, tuple[aiohttp.ClientSession, list[str], dict[str, str]]] = {
            "bearer": (bearer, plain, owner.headers),
            "cookie": (browser, plain, {}),
            "signed": (signed, signed_urls, {}),
        }
        for way, (session, urls, headers) in ways.items():
            for url in urls:
                for _ in range(2):
                    answer = await fetch(session, url, **headers)
                    assert answer.status == 200, (way, url, answer.status)
                    assert answer.headers["Cache-Control"].startswith("private"), (way, url)
                    # With Authorization or a grant the cache is not used at all; with
                    # only a cookie it is looked up, found empty, and left so.
                    assert answer.cache == ("MISS" if way == "cookie" else ""), (
                        way, url, answer.cache)
        for url in plain:
            # 2 by Bearer, 2 by cookie: each reached the origin.
            assert await origin_count(stack, url, 4) == 4, url
            answer = await fetch(stranger, url)
            assert (answer.status, answer.cache) == (404, "MISS"), url
            assert answer.headers["Access-Control-Allow-Origin"] == "*"
        for url in signed_urls:
            # Twice each, and the master and media playlists once more while walking.
            expected = 3 if url in signed_urls[:2] else 2
            assert await origin_count(stack, url, expected) == expected, url
        # Ranges of private media work every way; with Authorization or a grant the
        # request reaches the origin as sent (Range, If-None-Match), so seeking a large
        # file does not fetch it from the start.
        segment = plain[-1]
        data = (hls_tree.root / "hls" / segment.split("/")[-2] / segment.split("/")[-1]
                ).read_bytes()
        for way, (session, urls, headers) in ways.items():
            before = len(stack.origin_saw(urls[-1]))
            answer = await fetch(session, urls[-1], Range="bytes=100-199", **headers)
            assert (answer.status, answer.body) == (206, data[100:200]), (way, answer.status)
            assert await origin_count(stack, urls[-1], before + 1) == before + 1, way
            asked = stack.origin_saw(urls[-1])[before]
            assert asked.headers.get("Range") == (None if way == "cookie"
                                                  else "bytes=100-199"), way
            if way != "cookie":
                answer = await fetch(session, urls[-1], **{
                    "If-None-Match": answer.headers["ETag"]}, **headers)
                assert answer.status == 304, (way, answer.status)
        answer = await fetch(stranger, segment)
        assert (answer.status, answer.cache) == (404, "MISS")
        # Grants do not land in nginx's log.
        log = await nginx_log(stack, plain[-1])
        assert "sig=" not in log and f"/api/videos/{vid}/hls/master.m3u8" in log


async def test_answers_for_the_owner_alone_are_not_shared(stack: Stack, hls_tree: Tree) -> None:
    """The original of a public video whose owner offers no downloads: the owner gets it
    (by token or session cookie), nobody else, and nginx must not hand the owner's copy on."""
    owner = await sign_up(stack.origin, "alice")
    vid = await add_video(stack.origin, owner, hls_tree, allow_download=0)
    path = f"/api/videos/{vid}/original"
    async with viewer(stack) as browser, viewer(stack) as bearer, viewer(stack) as stranger:
        async with browser.post("/api/auth/login", json={"username": "alice",
                                                         "password": PASSWORD}) as resp:
            assert resp.status == 200
        for session, headers in ((browser, {}), (bearer, owner.headers)):
            mine = await fetch(session, path, **headers)
            assert mine.status == 200 and mine.body == hls_tree.source.read_bytes()
            theirs = await fetch(stranger, path)
            assert (theirs.status, theirs.cache) == (404, "MISS")
            assert mine.cache == ""  # the cache was not used
        assert await origin_count(stack, path, 4) == 4


@pytest.mark.parametrize("stack", [{"shared_cache_seconds": 1, "playlist_max_age_seconds": 1}],
                         indirect=True)
async def test_a_video_made_private_leaves_the_cache(stack: Stack, hls_tree: Tree) -> None:
    owner = await sign_up(stack.origin, "alice")
    vid = await add_video(stack.origin, owner, hls_tree)
    playlist = f"/api/videos/{vid}/hls/360p/index.m3u8"
    segment = f"/api/videos/{vid}/hls/360p/seg_00000.m4s"
    async with viewer(stack) as first, viewer(stack) as second:
        cached_at = time.monotonic()
        for url, cache_control in ((playlist, "public, max-age=1"), (segment, (
                "public, max-age=31536000, immutable, s-maxage=1"))):
            a = await fetch(first, url)
            assert (a.status, a.cache, a.headers["Cache-Control"]) == (200, "MISS",
                                                                       cache_control)
            b = await fetch(second, url)
            assert b.status == 200 and b.cache in ("HIT", "REVALIDATED"), (url, b.cache)
        async with first.patch(f"/api/videos/{vid}", json={"privacy": "private"},
                               headers=owner.headers) as resp:
            assert resp.status == 200, await resp.text()
        # At the origin, at once.
        async with stack.origin.get(segment) as direct:
            assert direct.status == 404
        await asyncio.sleep(1.1)
        # Through nginx within s-maxage (1 s) plus the up to 1 s by which nginx's
        # whole-second clock may round an entry's expiry up.
        statuses: dict[str, Answer] = {}
        while time.monotonic() - cached_at < 6.0:
            statuses = {url: await fetch(second, url) for url in (playlist, segment)}
            if all(a.status == 404 for a in statuses.values()):
                break
            await asyncio.sleep(0.1)
        gone_after = time.monotonic() - cached_at
        assert {u: a.status for u, a in statuses.items()} == {playlist: 404, segment: 404}
        assert gone_after < 4.5, gone_after  # 2 s, and room for a busy machine
        for url in (playlist, segment):
            # nginx asked the origin with the validators it had kept, and the 404 is
            # passed on, never stored: the next viewer is refused too.
            asked = stack.origin_saw(url)[-1]
            assert asked.status == 404 and "If-None-Match" in asked.headers, asked
            again = await fetch(first, url)
            assert again.status == 404 and again.cache != "HIT", again.cache


async def test_uploads_live_updates_and_forwarding_pass_through(
        stack: Stack, hls_tree: Tree) -> None:
    owner = await sign_up(stack.origin, "alice")
    token = owner.tokens["access_token"]
    async with viewer(stack) as session:
        # tus: the upload URL names the proxy (Host passed on), and a chunk larger than
        # nginx's default body limit (1 MB) goes through.
        total, chunk = 3 << 20, 2 << 20
        async with session.post("/api/uploads", headers={
                **owner.headers, "Tus-Resumable": "1.0.0", "Upload-Length": str(total),
                "X-Forwarded-For": "203.0.113.7"}) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
        assert location.startswith(f"{stack.proxy}/api/uploads/"), location
        # The address a client claims stays in front of the one nginx saw (which the
        # server takes, as the last hop).
        created = next(s for s in stack.seen if s.method == "POST"
                       and s.path_qs == "/api/uploads")
        assert created.headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
        assert created.headers["X-Forwarded-Proto"] == "http"
        async with session.patch(URL(location).path, data=b"\0" * chunk, headers={
                **owner.headers, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream"}) as resp:
            assert resp.status == 204, await resp.text()
            assert resp.headers["Upload-Offset"] == str(chunk)
        # The origin read that body from the socket itself (splice), so nginx must not
        # hand that connection to the next request: it is answered at once.
        async with asyncio.timeout(5), session.get("/healthz") as resp:
            assert resp.status == 200
        # WebSocket: the upgrade goes through, frames both ways (a ping, its pong); the
        # token in the URL stays out of nginx's log.
        async with session.ws_connect(f"/api/ws?token={token}", autoping=False) as ws:
            await ws.ping(b"proxy")
            for _ in range(10):
                message = await ws.receive(timeout=5)
                if message.type == aiohttp.WSMsgType.PONG:
                    break
            assert message.type == aiohttp.WSMsgType.PONG and message.data == b"proxy"
        # Server-Sent Events: the first bytes arrive while the stream stays open.
        async with session.get("/api/events", headers=owner.headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            line = await asyncio.wait_for(resp.content.readline(), 5)
            assert line.startswith(b"retry:")
    log = await nginx_log(stack, "/api/events")
    assert "/api/ws " in log and token not in log and "token=" not in log
